package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"

	"go.uber.org/zap"
)

// forward proxies a request that does not switch protocols. It does what
// httputil.ReverseProxy does for such a request (hop-by-hop headers
// removed both ways, trailers relayed, unknown-length and event-stream
// responses flushed as they arrive, an interrupted response aborted rather
// than passed off as complete) without cloning the request: the inbound
// header map, which only this handler holds, is rewritten in place and
// becomes the outbound one, and the response headers are moved, not
// copied, into the client's.
func (h *Handler) forward(w http.ResponseWriter, r *http.Request, x *exchange) {
	ctx := r.Context()
	// The access log's client address reads the inbound X-Forwarded-For,
	// which is about to be rewritten.
	if x.trusted {
		x.remote = h.clientIP.Resolve(x.peer, r.Header).String()
	}
	hdr := r.Header
	trailers := acceptsTrailers(hdr["Te"])
	h.readForwarded(r, x)
	removeHopByHop(hdr)
	if trailers {
		// Upstreams that care learn that trailers reach the client.
		hdr["Te"] = []string{"trailers"}
	}
	h.rewriteHeader(hdr, x)
	if _, ok := hdr["User-Agent"]; !ok {
		// Without one, Go would send its own.
		hdr["User-Agent"] = x.value(valUserAgent, "")
	}

	out := r.WithContext(ctx) // r itself stays as received, for the log
	x.outURL.Scheme = "http"  // the pool puts in the target's
	x.outURL.Host = x.pool.Name
	x.outURL.Path = x.route.UpstreamPath(x.path)
	x.outURL.RawQuery = r.URL.RawQuery
	out.URL = &x.outURL
	out.Host, out.RequestURI, out.Close = "", "", false
	// Request trailers are not forwarded: their values arrive after the
	// headers were checked and stripped, so they could carry an identity
	// (or anything else) past frontdoor.
	out.Trailer = nil
	switch {
	case r.ContentLength == 0:
		out.Body = nil // lets a failed connection be retried
	case r.Body != nil && r.Body != http.NoBody:
		x.body = bodyReader{ReadCloser: r.Body, x: x}
		out.Body = &x.body
	}

	res, err := x.pool.roundTrip(out, x.timeout())
	if err != nil {
		h.upstreamFailed(w, ctx, x, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Never asked for: upgrades go through ReverseProxy.
		res.Body.Close()
		h.upstreamFailed(w, ctx, x, errors.New("upstream switched protocols unasked"))
		return
	}

	removeHopByHop(res.Header)
	dst := w.Header()
	for k, vv := range res.Header {
		if cur, ok := dst[k]; ok {
			dst[k] = append(cur, vv...)
		} else {
			dst[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	flush := res.ContentLength == -1 || isEventStream(first(res.Header["Content-Type"]))
	pool := h.buffers
	if res.ContentLength >= 0 && res.ContentLength <= smallBody {
		pool = h.smallBuffers
	}
	if err := h.copyBody(ctx, w, res.Body, pool, flush, x); err != nil {
		res.Body.Close()
		// The status line is gone; breaking the connection is the only way
		// to tell the client the response is incomplete.
		panic(http.ErrAbortHandler)
	}
	res.Body.Close()

	if len(res.Trailer) > 0 {
		// Forces a chunked response even for a short body, so there is
		// somewhere to put the trailers.
		_ = http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		dst[k] = append(dst[k], vv...)
	}
}

// copyBody streams the response body to the client, flushing after each
// write when flush is set.
func (h *Handler) copyBody(ctx context.Context, w http.ResponseWriter, body io.Reader, pool *bufferPool, flush bool, x *exchange) error {
	bp := pool.get()
	defer pool.put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if flush {
				if err := http.NewResponseController(w).Flush(); err != nil {
					return err
				}
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			if ctx.Err() == nil {
				h.log.Warn("upstream response interrupted", zap.String("request_id", x.requestID),
					zap.String("upstream", x.pool.Name), zap.Error(rerr))
			}
			return rerr
		}
	}
}

// hopByHop are the connection-specific headers of RFC 9110 section 7.6.1,
// and the non-standard ones clients still send, which a proxy must not
// forward.
var hopByHop = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// removeHopByHop deletes the hop-by-hop headers and those the Connection
// header names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	if len(h) > len(hopByHop) {
		for _, k := range hopByHop {
			delete(h, k)
		}
		return
	}
	// A typical request or response has fewer fields than there are
	// hop-by-hop names: looking at each field is cheaper than hashing
	// every name.
	for k := range h {
		if isHopByHop(k) {
			delete(h, k)
		}
	}
}

// isHopByHop reports whether the canonical name k is in hopByHop.
func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// acceptsTrailers reports whether TE lists "trailers".
func acceptsTrailers(te []string) bool {
	for _, v := range te {
		for tok := range strings.SplitSeq(v, ",") {
			tok, _, _ = strings.Cut(tok, ";")
			if strings.EqualFold(textproto.TrimString(tok), "trailers") {
				return true
			}
		}
	}
	return false
}

// isEventStream reports whether a Content-Type is text/event-stream, whose
// events must reach the client as they come.
func isEventStream(ct string) bool {
	ct, _, _ = strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}
