package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// rrNext follows every response in the tests, so that what readResponse
// leaves in the reader is parsed (and compared) too.
const rrNext = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Next: yes\r\n\r\nnext"

// rrLongHead is a head of well over 64 bytes.
var rrLongHead = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Long: " + strings.Repeat("v", 300) + "\r\n\r\nhi"

var readResponseTests = []struct {
	name string
	in   string // followed by rrNext
	head bool   // a HEAD request
	// fast: the common form, which readCommonResponse parses (with a
	// 4096-byte buffer and the whole input at once).
	fast bool
}{
	// The common form.
	{"200 with CL", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello", false, true},
	{"CL 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, true},
	{"CL leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 003\r\n\r\nabc", false, true},
	{"CL with OWS", "HTTP/1.1 200 OK\r\nContent-Length: \t3 \r\n\r\nabc", false, true},
	{"CL 18 digits short body", "HTTP/1.1 200 OK\r\nContent-Length: 100000000000000000\r\n\r\nabc", false, true},
	{"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false, true},
	{"404", "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", false, true},
	{"500 empty reason", "HTTP/1.1 500 \r\nContent-Length: 1\r\n\r\nx", false, true},
	{"reason with tab", "HTTP/1.1 200 O\tK  \r\nContent-Length: 1\r\n\r\nx", false, true},
	{"status 599", "HTTP/1.1 599 X\r\nContent-Length: 1\r\n\r\nx", false, true},
	{"status 600", "HTTP/1.1 600 X\r\nContent-Length: 1\r\n\r\nx", false, true},
	{"status 999", "HTTP/1.1 999 X\r\nContent-Length: 1\r\n\r\nx", false, true},
	{"lower-case names", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: a/b\r\nx-custom_1: v\r\n\r\nok", false, true},
	{"several Set-Cookie", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nContent-Length: 2\r\nSet-Cookie: c=3; Path=/\r\n\r\nok", false, true},
	{"empty values", "HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Blank:   \r\nContent-Length: 2\r\n\r\nok", false, true},
	{"keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"Connection: Close", "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false, true},
	{"Connection list with close", "HTTP/1.1 200 OK\r\nConnection: X-Hop, close\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"two Connection fields", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nconnection: \tclose\t\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"Connection: closed", "HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"Trailer without chunking", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"Cache-Control", "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"CL body of CRLFs", "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\r\n\r\n", false, true},
	{"long head", rrLongHead, false, true},

	// Left to http.ReadResponse.
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, false},
	{"chunked with trailer", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: v\r\n\r\n", false, false},
	{"chunked and CL", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false, false},
	{"TE identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", false, false},
	{"no CL, read until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil close", false, false},
	{"no CL, Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close", false, false},
	{"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false},
	{"HEAD Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\n", true, false},
	{"HEAD chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, false},
	{"204", "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false, false},
	{"204 with CL", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, false},
	{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nETag: \"x\"\r\n\r\n", false, false},
	{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n", false, false},
	{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n", false, false},
	{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", false, false},
	{"199", "HTTP/1.1 199 X\r\nContent-Length: 1\r\n\r\n", false, false},
	{"HTTP/1.0 with CL", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"HTTP/2.0", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"lower-case version", "http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"no reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"two spaces before code", "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"four-digit code", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"signed code", "HTTP/1.1 +20 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"negative code", "HTTP/1.1 -20 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"letters in code", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"non-ASCII reason", "HTTP/1.1 200 \xc3\xa9\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"control in reason", "HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, false},
	{"bare LF status line", "HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\nok", false, false},
	{"bare LF field", "HTTP/1.1 200 OK\r\nContent-Length: 2\nX: y\r\n\r\nok", false, false},
	{"bare LF blank line", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nok", false, false},
	{"bare LF blank line, CRLFCRLF in body", "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\nok\r\n\r\n", false, false},
	{"bare CR", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\rb\r\n\r\nok", false, false},
	{"Pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"Pragma with Cache-Control", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"duplicate CL equal", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"duplicate CL OWS", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:  2 \r\n\r\nok", false, false},
	{"duplicate CL differing", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false, false},
	{"CL list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nok", false, false},
	{"empty CL", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nok", false, false},
	{"signed CL", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false, false},
	{"negative CL", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", false, false},
	{"hex CL", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok", false, false},
	{"CL 19 digits", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000000000\r\n\r\nok", false, false},
	{"CL too big", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\nok", false, false},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"obs-fold tab", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\tc\r\n\r\nok", false, false},
	{"leading space field", "HTTP/1.1 200 OK\r\n Content-Length: 2\r\n\r\nok", false, false},
	{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", false, false},
	{"no colon", "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\nok", false, false},
	{"NUL in value", "HTTP/1.1 200 OK\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"non-ASCII value", "HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"long name", "HTTP/1.1 200 OK\r\nX-" + strings.Repeat("n", 70) + ": v\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"leading CRLF", "\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"only CRLF", "\r\n", false, false},
	{"garbage", "garbage\r\n\r\n", false, false},
	{"truncated head then EOF", "HTTP/1.1 200 OK\r\nContent-Le", false, false},
	{"truncated after status", "HTTP/1.1 200 OK\r\n", false, false},
	{"truncated blank line", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r", false, false},
	{"truncated status", "HTTP/1.1 2", false, false},
	{"EOF before anything", "", false, false},
}

// rrResult is what readResponse promises to give as http.ReadResponse does,
// for one response.
type rrResult struct {
	Err              bool
	Status           string
	StatusCode       int
	Proto            string
	ProtoMajor       int
	ProtoMinor       int
	Header           http.Header
	ContentLength    int64
	Close            bool
	TransferEncoding []string
	Trailer          http.Header
	NoBody           bool
	Body             []byte
	BodyErr          string // "", "unexpected EOF" or "other"
	SameRequest      bool
}

type rrReadFunc func(*bufio.Reader, *http.Request) (*http.Response, error)

// rrReadAll reads responses to req from data with read, each body to its
// end, until one fails or the reader is exhausted.
func rrReadAll(read rrReadFunc, r io.Reader, size int, req *http.Request) []rrResult {
	br := bufio.NewReaderSize(r, size)
	var results []rrResult
	for range 8 {
		resp, err := read(br, req)
		if err != nil {
			return append(results, rrResult{Err: true})
		}
		res := rrResult{
			Status:           resp.Status,
			StatusCode:       resp.StatusCode,
			Proto:            resp.Proto,
			ProtoMajor:       resp.ProtoMajor,
			ProtoMinor:       resp.ProtoMinor,
			Header:           resp.Header,
			ContentLength:    resp.ContentLength,
			Close:            resp.Close,
			TransferEncoding: resp.TransferEncoding,
			NoBody:           resp.Body == http.NoBody,
			SameRequest:      resp.Request == req,
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		res.Body = body
		switch {
		case err == nil:
		case errors.Is(err, io.ErrUnexpectedEOF):
			res.BodyErr = "unexpected EOF"
		default:
			res.BodyErr = "other: " + err.Error()
		}
		resp.Body.Close()
		res.Trailer = resp.Trailer
		results = append(results, res)
		if err != nil {
			break
		}
	}
	return results
}

// rrReaders give the same bytes in different pieces.
var rrReaders = []struct {
	name string
	f    func([]byte) io.Reader
}{
	{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"onebyte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"dataerr", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
}

// rrCompare fails t unless readResponse reads data as http.ReadResponse does.
func rrCompare(t *testing.T, data []byte, head bool, size int, reader func([]byte) io.Reader) {
	t.Helper()
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	req, _ := http.NewRequest(method, "http://upstream.test/", nil)
	got := rrReadAll(readResponse, reader(data), size, req)
	want := rrReadAll(http.ReadResponse, reader(data), size, req)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s request, buffer %d, input %q:\nreadResponse:      %s\nhttp.ReadResponse: %s",
			method, size, data, rrFormat(got), rrFormat(want))
	}
}

func rrFormat(results []rrResult) string {
	var b strings.Builder
	for i, r := range results {
		fmt.Fprintf(&b, "\n  [%d] %+v", i, r)
	}
	return b.String()
}

func TestReadResponseLikeReadResponse(t *testing.T) {
	for _, tt := range readResponseTests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{16, 64, 4096} {
				for _, r := range rrReaders {
					rrCompare(t, []byte(tt.in+rrNext), tt.head, size, r.f)
				}
			}
			// And alone, at the end of the stream.
			rrCompare(t, []byte(tt.in), tt.head, 4096, rrReaders[0].f)
		})
	}
}

// TestReadCommonResponse checks which responses take the common path, and
// that one that does not is left in the reader whole.
func TestReadCommonResponse(t *testing.T) {
	for _, tt := range readResponseTests {
		if tt.in == "" {
			continue // rrNext alone, which is common
		}
		for _, size := range []int{16, 4096} {
			data := tt.in + rrNext
			method := http.MethodGet
			if tt.head {
				method = http.MethodHead
			}
			req, _ := http.NewRequest(method, "http://upstream.test/", nil)
			br := bufio.NewReaderSize(strings.NewReader(data), size)
			resp, err := readCommonResponse(br, req)
			fast := size == 4096 && tt.fast
			switch {
			case err != nil:
				t.Errorf("%s, buffer %d: error %v", tt.name, size, err)
			case fast && resp == nil:
				t.Errorf("%s, buffer %d: left to http.ReadResponse, want the common path", tt.name, size)
			case !fast && resp != nil:
				t.Errorf("%s, buffer %d: took the common path, want http.ReadResponse", tt.name, size)
			case resp == nil:
				if rest, _ := io.ReadAll(br); string(rest) != data {
					t.Errorf("%s, buffer %d: declined but left %q, want %q", tt.name, size, rest, data)
				}
			}
		}
	}
}

// TestReadCommonResponseEOF: nothing at all is an error (io.EOF, where
// http.ReadResponse says io.ErrUnexpectedEOF), not a fall back.
func TestReadCommonResponseEOF(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.test/", nil)
	resp, err := readCommonResponse(bufio.NewReader(strings.NewReader("")), req)
	if resp != nil || err == nil {
		t.Fatalf("readCommonResponse on empty input = %v, %v; want an error", resp, err)
	}
	if _, err := readResponse(bufio.NewReader(strings.NewReader("")), req); err == nil {
		t.Fatal("readResponse on empty input: no error")
	}
}

// rrFlakyReader returns its data one byte at a time, failing once with a
// transient error (as a reader whose deadline is later extended would)
// after the first byte.
type rrFlakyReader struct {
	data  []byte
	reads int
}

var errRRTransient = errors.New("transient read error")

func (r *rrFlakyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.reads++; r.reads == 2 {
		return 0, errRRTransient
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = r.data[0]
	r.data = r.data[1:]
	return 1, nil
}

// TestReadResponseReadError: an error from the underlying reader while the
// head is incomplete is an error of readResponse, as of http.ReadResponse,
// even if a later read would succeed.
func TestReadResponseReadError(t *testing.T) {
	data := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	req, _ := http.NewRequest(http.MethodGet, "http://upstream.test/", nil)
	_, wantErr := http.ReadResponse(bufio.NewReader(&rrFlakyReader{data: []byte(data)}), req)
	if wantErr == nil {
		t.Fatal("http.ReadResponse did not see the read error")
	}
	resp, err := readResponse(bufio.NewReader(&rrFlakyReader{data: []byte(data)}), req)
	if err == nil {
		t.Errorf("readResponse = %s, nil; http.ReadResponse failed with %v", resp.Status, wantErr)
	}
}

// FuzzReadResponse checks readResponse's promise: for any input it gives
// what http.ReadResponse gives, and leaves the same bytes for the next.
func FuzzReadResponse(f *testing.F) {
	for _, tt := range readResponseTests {
		f.Add([]byte(tt.in+rrNext), tt.head, uint16(4096), uint8(0))
	}
	f.Add([]byte(rrLongHead), false, uint16(64), uint8(1))
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"+rrNext), false, uint16(20), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, head bool, size uint16, reader uint8) {
		if len(data) > 1<<16 {
			return
		}
		rrCompare(t, data, head, 16+int(size)%5000, rrReaders[int(reader)%len(rrReaders)].f)
	})
}

// TestReadResponseClose checks Close, ContentLength and the body for the
// Connection header's forms, apart from the header maps.
func TestReadResponseClose(t *testing.T) {
	for _, conn := range []string{
		"close", "Close", "CLOSE", " close ", "keep-alive, close", "close,keep-alive",
		"x, \tclose\t, y", "keep-alive\r\nConnection: close", "closed", "keep-alive", "",
		"close\r\nConnection: close",
	} {
		data := "HTTP/1.1 200 OK\r\nConnection: " + conn + "\r\nContent-Length: 2\r\n\r\nok" + rrNext
		req, _ := http.NewRequest(http.MethodGet, "http://upstream.test/", nil)
		got := rrReadAll(readResponse, strings.NewReader(data), 4096, req)
		want := rrReadAll(http.ReadResponse, strings.NewReader(data), 4096, req)
		for _, rr := range [][]rrResult{got, want} {
			for i := range rr {
				rr[i].Header = nil
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Connection: %q:\nreadResponse:      %s\nhttp.ReadResponse: %s", conn, rrFormat(got), rrFormat(want))
		}
	}
}
