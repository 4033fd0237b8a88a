package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"

	"frontdoor/internal/httphead"
)

// readResponse reads the response to req from br. The form nearly every
// upstream sends (HTTP/1.1, a final status with a body, plain header fields,
// one Content-Length, the whole head in the read buffer) is parsed by
// httphead, which costs a fraction of textproto's allocations; anything
// else (chunked or close-delimited bodies, HEAD, 1xx, 204, 304, other
// versions, unusual bytes) is left in the buffer for http.ReadResponse,
// the parser http.Transport uses.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	resp, err := readCommonResponse(br, req)
	if resp != nil || err != nil {
		return resp, err
	}
	return http.ReadResponse(br, req)
}

// readCommonResponse parses the response head if it is of the common form,
// and returns nil, nil if not, having consumed nothing.
func readCommonResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodHead {
		return nil, nil
	}
	var n int
	for scanned := 0; ; {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf[scanned:], []byte("\r\n\r\n")); i >= 0 {
			n = scanned + i + 4
			break
		}
		if len(buf) >= br.Size() || httphead.HasBareLF(buf) {
			return nil, nil
		}
		scanned = max(len(buf)-3, 0)
		if _, err := br.Peek(len(buf) + 1); err != nil {
			// The reader has handed over its error; ReadResponse, reading
			// again, might not see it.
			return nil, err
		}
	}
	buf, _ := br.Peek(n)
	s := string(buf)
	// Status line: HTTP/1.1 SP 3DIGIT SP reason.
	eol := strings.Index(s, "\r\n")
	line := s[:eol]
	if len(line) < 13 || line[:9] != "HTTP/1.1 " || line[12] != ' ' {
		return nil, nil
	}
	code := 0
	for _, c := range []byte(line[9:12]) {
		if c < '0' || c > '9' {
			return nil, nil
		}
		code = code*10 + int(c-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil, nil
	}
	for i := 13; i < len(line); i++ {
		if c := line[i]; (c < ' ' && c != '\t') || c >= 0x7f {
			return nil, nil
		}
	}
	header, ok := httphead.ParseFields(s[eol+2:])
	if !ok {
		return nil, nil
	}
	if _, ok := header["Transfer-Encoding"]; ok {
		return nil, nil
	}
	if _, ok := header["Pragma"]; ok {
		return nil, nil
	}
	cl := header["Content-Length"]
	if len(cl) != 1 {
		return nil, nil
	}
	length, ok := httphead.ParseLength(cl[0])
	if !ok {
		return nil, nil
	}
	closing := httphead.HasToken(header["Connection"], "close")
	if closing {
		// As ReadResponse does: the close is kept in Response.Close only.
		delete(header, "Connection")
	}
	br.Discard(n)
	resp := &http.Response{
		Status:        line[9:],
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		ContentLength: length,
		Close:         closing,
		Request:       req,
		Body:          http.NoBody,
	}
	if length > 0 {
		resp.Body = &lengthBody{r: br, remaining: length}
	}
	return resp, nil
}

// lengthBody is a body of Content-Length bytes.
type lengthBody struct {
	r         io.Reader
	remaining int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.r.Read(p)
	b.remaining -= int64(n)
	switch {
	case b.remaining == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
