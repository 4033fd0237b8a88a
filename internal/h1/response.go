package h1

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"frontdoor/internal/httphead"
)

// bufferBeforeChunking is how much body a response holds back to learn
// whether the handler finishes within it, in which case it gets a
// Content-Length rather than chunked encoding: net/http's amount.
const bufferBeforeChunking = 2048

// response is the http.ResponseWriter of a request served here. It frames
// the response the way net/http's does (TestResponseFramingMatchesNetHTTP
// compares them case by case): the handler's Content-Length when it
// declares one, else Content-Length for a body that ends within
// bufferBeforeChunking and chunked encoding beyond; no body for HEAD, 1xx,
// 204 and 304, and no framing or type headers where they have none; Date
// added; Content-Type sniffed from the first bytes when missing; trailers
// declared in "Trailer" or set with http.TrailerPrefix sent after a chunked
// body.
type response struct {
	c      *conn
	req    *http.Request
	header http.Header

	status      int
	wroteHeader bool
	// committed: the status line and header are in the write buffer.
	committed bool
	chunked   bool
	// contentLength is the declared length, -1 if none.
	contentLength int64
	// hasLength: the handler set Content-Length, valid or not, so none is
	// computed.
	hasLength bool
	written   int64
	// hasType: the handler set Content-Type (possibly to nothing) or
	// Content-Encoding, so no sniffing.
	hasType bool
	// te is the handler's Transfer-Encoding, if it set one.
	te       string
	hasTE    bool
	trailers bool
	// connection is the handler's Connection header.
	connection []string
	// closeAfter: the connection ends after this response.
	closeAfter bool
	// err is the first write error; the connection is dead after it.
	err error
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	w.wroteHeader = true
	w.status = code
	c := w.c
	c.head = c.head[:0]
	c.pending = c.pending[:0]
	// What net/http leaves out where there is no body.
	noLength := !w.bodyAllowed()
	noType := code == http.StatusNotModified
	for k, vv := range w.header {
		switch {
		case k == "Content-Length":
			if noLength || len(vv) == 0 {
				continue
			}
			w.hasLength = true
			if n, err := strconv.ParseInt(vv[0], 10, 64); err == nil && n >= 0 {
				w.contentLength = n
			} else {
				w.c.srv.logf("h1: invalid Content-Length of %q", vv[0])
			}
			continue
		case k == "Transfer-Encoding":
			if len(vv) > 0 && !noLength {
				w.hasTE, w.te = true, vv[0]
			}
			continue
		case k == "Connection":
			w.connection = vv
			if httphead.HasToken(vv, "close") {
				w.closeAfter = true
			}
			continue
		case k == "Content-Type":
			w.hasType = true
			if noType {
				continue
			}
		case k == "Content-Encoding" && len(vv) > 0 && vv[0] != "":
			w.hasType = true
		case k == "Trailer":
			w.trailers = true
		case strings.HasPrefix(k, http.TrailerPrefix):
			w.trailers = true
			continue
		}
		c.head = appendField(c.head, k, vv)
	}
	if _, ok := w.header["Date"]; !ok {
		c.head = append(c.head, "Date: "...)
		c.head = append(c.head, c.date.get()...)
		c.head = append(c.head, "\r\n"...)
	}
}

// appendField appends k's values as header lines, made safe as net/http
// makes them: an invalid name is skipped, CR and LF in a value become
// spaces, and surrounding spaces and tabs are trimmed.
func appendField(b []byte, k string, vv []string) []byte {
	if !httphead.IsToken(k) {
		return b
	}
	for _, v := range vv {
		b = append(b, k...)
		b = append(b, ": "...)
		lo, hi := 0, len(v)
		for lo < hi && isSpace(v[lo]) {
			lo++
		}
		for hi > lo && isSpace(v[hi-1]) {
			hi--
		}
		for i := lo; i < hi; i++ {
			c := v[i]
			if c == '\r' || c == '\n' {
				c = ' '
			}
			b = append(b, c)
		}
		b = append(b, "\r\n"...)
	}
	return b
}

// isSpace is textproto's notion of space, trimmed from header values.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// writeInformational sends a 1xx response at once, as net/http does,
// without framing headers.
func (w *response) writeInformational(code int) {
	if w.err != nil {
		return
	}
	b := appendStatusLine(w.c.bw.AvailableBuffer(), code)
	for k, vv := range w.header {
		if k != "Content-Length" && k != "Transfer-Encoding" {
			b = appendField(b, k, vv)
		}
	}
	b = append(b, "\r\n"...)
	if _, err := w.c.bw.Write(b); err != nil {
		w.err = err
		return
	}
	w.err = w.c.bw.Flush()
}

func (w *response) bodyAllowed() bool {
	return w.status != http.StatusNoContent && w.status != http.StatusNotModified
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !w.bodyAllowed() {
		return 0, http.ErrBodyNotAllowed
	}
	// Counted even when refused, as net/http does, so that later writes
	// are refused too.
	w.written += int64(len(p))
	if w.contentLength >= 0 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	c := w.c
	if !w.committed {
		// The first bytes are held back, to sniff the type from and, if
		// the handler finishes within them, to measure.
		if len(c.pending)+len(p) <= bufferBeforeChunking {
			c.pending = append(c.pending, p...)
			return len(p), nil
		}
		if !w.commit(false, p) {
			return 0, w.err
		}
	}
	if w.req.Method == http.MethodHead {
		return len(p), nil
	}
	return w.writeBody(p)
}

func (w *response) WriteString(s string) (int, error) {
	// The bytes are copied before Write returns, into the buffers.
	return w.Write([]byte(s))
}

// writeBody writes p as body bytes, chunk-framed if chunked.
func (w *response) writeBody(p []byte) (int, error) {
	bw := w.c.bw
	if w.chunked {
		b := strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16)
		b = append(b, "\r\n"...)
		bw.Write(b)
	}
	n, err := bw.Write(p)
	if w.chunked && err == nil {
		_, err = bw.WriteString("\r\n")
	}
	if err != nil {
		w.err = err
	}
	return n, err
}

// commit writes the status line and header, deciding the framing, then
// any pending body. done says the handler has returned, so the pending
// body is the whole of it; next is the body about to follow the pending
// one, which Content-Type sniffing may need.
func (w *response) commit(done bool, next []byte) bool {
	w.committed = true
	c := w.c
	isHead := w.req.Method == http.MethodHead
	b := appendStatusLine(c.bw.AvailableBuffer(), w.status)
	b = append(b, c.head...)
	bodyAllowed := w.bodyAllowed()
	if bodyAllowed && !w.hasType && !w.hasTE && (len(c.pending) > 0 || len(next) > 0) {
		b = append(b, "Content-Type: "...)
		b = append(b, sniff(c.pending, next)...)
		b = append(b, "\r\n"...)
	}
	switch {
	case !bodyAllowed:
	case w.contentLength >= 0:
		b = appendLength(b, w.contentLength)
	case done && !w.trailers && !w.hasTE && !w.hasLength && (!isHead || w.written > 0):
		w.contentLength = int64(len(c.pending))
		b = appendLength(b, w.contentLength)
	case isHead:
	case w.hasTE && strings.EqualFold(w.te, "identity"):
		// Delimited by the connection's end, as net/http does for it.
		w.closeAfter = true
	default:
		w.chunked = true
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.c.srv.closing.Load() {
		w.closeAfter = true
	}
	switch {
	case w.closeAfter && !httphead.HasToken(w.connection, "close"):
		b = append(b, "Connection: close\r\n"...)
	case w.connection != nil:
		b = appendField(b, "Connection", w.connection)
	}
	b = append(b, "\r\n"...)
	if _, err := c.bw.Write(b); err != nil {
		w.err = err
		return false
	}
	if len(c.pending) > 0 {
		p := c.pending
		c.pending = c.pending[:0]
		if !isHead {
			if _, err := w.writeBody(p); err != nil {
				return false
			}
		}
	}
	return true
}

// sniff is http.DetectContentType of the first bytes written: held, then
// next.
func sniff(held, next []byte) string {
	const sniffLen = 512 // all DetectContentType looks at
	if len(held) >= sniffLen || len(next) == 0 {
		return http.DetectContentType(held)
	}
	if len(held) == 0 {
		return http.DetectContentType(next)
	}
	var buf [sniffLen]byte
	n := copy(buf[:], held)
	n += copy(buf[n:], next)
	return http.DetectContentType(buf[:n])
}

func appendLength(b []byte, n int64) []byte {
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, "\r\n"...)
}

func appendStatusLine(b []byte, code int) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	if text := http.StatusText(code); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(code), 10)
	}
	return append(b, "\r\n"...)
}

// Flush sends what the handler wrote so far; an uncommitted response
// without a declared length becomes chunked.
func (w *response) Flush() { _ = w.FlushError() }

// FlushError is Flush for http.ResponseController.
func (w *response) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return w.err
	}
	if !w.committed && !w.commit(false, nil) {
		return w.err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

// finish completes the response after the handler returned.
func (w *response) finish() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return
	}
	if !w.committed && !w.commit(true, nil) {
		return
	}
	bw := w.c.bw
	if w.chunked {
		b := append(bw.AvailableBuffer(), "0\r\n"...)
		for k, vv := range w.header {
			if t, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
				b = appendField(b, http.CanonicalHeaderKey(t), vv)
			}
		}
		for _, v := range w.header["Trailer"] {
			for t := range strings.SplitSeq(v, ",") {
				if t = http.CanonicalHeaderKey(strings.TrimSpace(t)); t != "" && declarable(t) {
					b = appendField(b, t, w.header[t])
				}
			}
		}
		b = append(b, "\r\n"...)
		bw.Write(b)
	}
	if w.contentLength >= 0 && w.written != w.contentLength && w.bodyAllowed() && w.req.Method != http.MethodHead {
		// The client would wait for bytes that never come, or read the
		// surplus as the next response.
		w.closeAfter = true
	}
	if err := bw.Flush(); err != nil {
		w.err = err
	}
}

// declarable reports whether a declared trailer may be sent: not the
// fields httpguts.ValidTrailerHeader refuses (framing, routing,
// authentication, content description), as net/http.
func declarable(k string) bool {
	switch k {
	case "Authorization", "Cache-Control", "Connection", "Content-Encoding",
		"Content-Length", "Content-Range", "Content-Type", "Expect", "Host",
		"Keep-Alive", "Max-Forwards", "Pragma", "Proxy-Authenticate",
		"Proxy-Authorization", "Proxy-Connection", "Range", "Realm", "Te",
		"Trailer", "Transfer-Encoding", "Www-Authenticate":
		return false
	}
	return true
}

// requestBody is a fast request's body: Content-Length bytes from the
// connection's reader. The lock keeps a reader that outlives the handler
// (a transport still sending it upstream) off the connection once the
// next request is being read.
type requestBody struct {
	mu        sync.Mutex
	br        io.Reader
	remaining int64
	closed    bool
	err       error
}

func (b *requestBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	if b.err != nil {
		return 0, b.err
	}
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		err = io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *requestBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

// unread reports whether the handler left part of the body unread.
func (b *requestBody) unread() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remaining > 0 && b.err == nil
}

// close ends the body after the handler, reading what it left unread, and
// reports whether the connection can serve another request.
func (b *requestBody) close() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.err != nil {
		return false
	}
	if b.remaining > 0 {
		n, err := io.CopyN(io.Discard, b.br, b.remaining)
		b.remaining -= n
		return err == nil
	}
	return true
}

// dateCache formats the Date header once a second.
type dateCache struct {
	sec  int64
	text []byte
}

func (d *dateCache) get() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != d.sec || d.text == nil {
		d.sec = sec
		d.text = now.UTC().AppendFormat(d.text[:0], http.TimeFormat)
	}
	return d.text
}
