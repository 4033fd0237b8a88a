package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"frontdoor/internal/httphead"
)

// writeRequest writes req in HTTP/1.1 wire format the way Request.Write
// does for the requests the direct client sends (no body, or one of known
// length), but without sorting the header fields or formatting with fmt,
// which made up most of the cost of writing a request. Anything out of the
// ordinary (a host that is not plain ASCII or carries an IPv6 zone, CONNECT,
// a body of unknown length) is left to Request.Write.
func writeRequest(bw *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	if !plainHost(host) || method == http.MethodConnect || req.ContentLength < 0 ||
		len(req.TransferEncoding) > 0 || req.URL.Opaque != "" {
		return req.Write(bw)
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	if !hasBody && req.ContentLength != 0 || hasBody && req.ContentLength == 0 {
		return req.Write(bw) // let it report the mismatch
	}
	uri := req.URL.RequestURI()
	if hasCTL(uri) {
		closeBody(req)
		return errors.New("proxy: control character in the request URL")
	}

	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	userAgent := "Go-http-client/1.1"
	if v, ok := req.Header["User-Agent"]; ok {
		userAgent = ""
		if len(v) > 0 {
			userAgent = v[0]
		}
	}
	if userAgent != "" {
		writeField(bw, "User-Agent", userAgent)
	}
	if req.Close {
		bw.WriteString("Connection: close\r\n")
	}
	// Request.Write's rule: a known length is always sent, and a zero one
	// for the methods servers expect a body with.
	if req.ContentLength > 0 || method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n")
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // written above from the request's fields, or not at all
		}
		if !httphead.IsToken(k) {
			closeBody(req)
			return fmt.Errorf("proxy: invalid header field name %q", k)
		}
		for _, v := range vv {
			writeField(bw, k, v)
		}
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		closeBody(req)
		return err
	}
	if !hasBody {
		return nil
	}
	defer req.Body.Close()
	n, err := io.Copy(bw, io.LimitReader(req.Body, req.ContentLength))
	if err != nil {
		return err
	}
	if n != req.ContentLength {
		return fmt.Errorf("proxy: ContentLength=%d with Body length %d", req.ContentLength, n)
	}
	return nil
}

// writeField writes one header field. As in Request.Write, a line break in
// a value becomes a space, so no value can start a field of its own.
func writeField(bw *bufio.Writer, name, value string) {
	if strings.ContainsAny(value, "\r\n") {
		value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
	}
	value = strings.Trim(value, " \t")
	bw.WriteString(name)
	bw.WriteString(": ")
	bw.WriteString(value)
	bw.WriteString("\r\n")
}

// plainHost reports whether host is printable ASCII with no IPv6 zone:
// what needs neither punycode nor zone removal.
func plainHost(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c >= 0x7f || c == '%' {
			return false
		}
	}
	return true
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
