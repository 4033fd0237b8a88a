package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// secBigSize is what the upstream's /api/big streams: far more than any
// buffer frontdoor could hold without it showing in its peak RSS.
const secBigSize = 512 << 20

// secBigChunk is the repeated content of /api/big.
var secBigChunk = bytes.Repeat([]byte("frontdoor streams, never buffers\n"), 2048)

func streamBig(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/octet-stream")
	for left := secBigSize; left > 0; {
		n := min(left, len(secBigChunk))
		if _, err := w.Write(secBigChunk[:n]); err != nil {
			return
		}
		left -= n
	}
}

// The WebSocket side of the tests: RFC 6455's opening handshake and
// unfragmented frames, enough for an echo round trip.

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	sum := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

const (
	wsText   = 0x1
	wsBinary = 0x2
	wsClose  = 0x8
)

// wsWriteFrame writes one final frame; a client must mask, a server must not.
func wsWriteFrame(w io.Writer, opcode byte, payload []byte, masked bool) error {
	hdr := []byte{0x80 | opcode}
	maskBit := byte(0)
	if masked {
		maskBit = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, maskBit|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, maskBit|126)
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr = append(hdr, maskBit|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	data := payload
	if masked {
		var key [4]byte
		rand.Read(key[:])
		hdr = append(hdr, key[:]...)
		data = make([]byte, len(payload))
		for i, b := range payload {
			data[i] = b ^ key[i%4]
		}
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// wsReadFrame reads one final frame and insists on the masking its sender
// owes (clients mask, servers do not).
func wsReadFrame(r io.Reader, wantMasked bool) (opcode byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frame")
	}
	masked := h[1]&0x80 != 0
	if masked != wantMasked {
		return 0, nil, fmt.Errorf("frame masked=%v, want %v", masked, wantMasked)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	var key [4]byte
	if masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i%4]
		}
	}
	return h[0] & 0x0f, payload, nil
}

// serveWebSocketEcho is the upstream's WebSocket endpoint: it echoes every
// frame until the client closes.
func serveWebSocketEcho(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-WebSocket-Version") != "13" || key == "" {
		http.Error(w, "WebSocket handshake expected", http.StatusBadRequest)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", wsAccept(key))
	if brw.Flush() != nil {
		return
	}
	for {
		op, payload, err := wsReadFrame(brw, true)
		if err != nil {
			return
		}
		if wsWriteFrame(brw, op, payload, false) != nil || brw.Flush() != nil || op == wsClose {
			return
		}
	}
}

func wsUpgradeRequest(key string, extra ...string) string {
	return rawRequest(http.MethodGet, "/api/ws", append([]string{
		"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + key,
	}, extra...)...)
}

func TestSecurityWebSocket(t *testing.T) {
	t.Parallel()
	env := startSecEnv(t, secOptions{})
	key := base64.StdEncoding.EncodeToString([]byte("frontdoor-ws-key"))

	refusals := []struct {
		name   string
		query  string
		extra  []string
		status int
		code   string
	}{
		{"no token", "", nil, http.StatusUnauthorized, "missing_token"},
		{"token in the query is ignored", "?access_token=" + env.token(t, "42", "author"), nil, http.StatusUnauthorized, "missing_token"},
		{"invalid token", "", []string{"Authorization: Bearer " + env.token(t, "42", "author") + "x"}, http.StatusUnauthorized, "invalid_token"},
		{"spoofed identity instead of a token", "", []string{"X-User-Id: 42", "X-User-Roles: administrator"}, http.StatusUnauthorized, "missing_token"},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			n := env.up.count()
			req := strings.Replace(wsUpgradeRequest(key, c.extra...), "/api/ws", "/api/ws"+c.query, 1)
			resp, body := env.roundTrip(t, req)
			if problem := apiError(resp, body, c.status, c.code); problem != "" {
				t.Error(problem)
			}
			env.up.none(t, n)
		})
	}

	t.Run("a valid token gets a working echo", func(t *testing.T) {
		n := env.up.count()
		c := dialRaw(t, env.addr)
		c.send(t, wsUpgradeRequest(key, "Authorization: Bearer "+env.token(t, "42", "author"), "X-User-Id: 1", "Connection: X-User-Id"))
		resp, body, err := c.read(http.MethodGet)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) ||
			!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("handshake: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		got := env.up.only(t, n)
		if id := identityOf(got.Header); !sameHeaders(id, map[string][]string{"X-User-Id": {"42"}, "X-User-Roles": {"author"}}) {
			t.Errorf("the upstream saw identity %v", id)
		}
		if got.Header.Get("Authorization") != "" {
			t.Error("Authorization reached the upstream")
		}
		big := bytes.Repeat([]byte{0, 1, 2, 0xfe, 0xff}, 14000) // a 64-bit length
		for _, f := range []struct {
			op      byte
			payload []byte
		}{
			{wsText, []byte("hello through frontdoor")},
			{wsBinary, bytes.Repeat([]byte("x"), 300)}, // a 16-bit length
			{wsBinary, big},
			{wsClose, []byte{0x03, 0xe8}},
		} {
			if err := wsWriteFrame(c, f.op, f.payload, true); err != nil {
				t.Fatal(err)
			}
			op, payload, err := wsReadFrame(c.br, false)
			if err != nil {
				t.Fatalf("echo of opcode %d: %v", f.op, err)
			}
			if op != f.op || !bytes.Equal(payload, f.payload) {
				t.Errorf("echo of opcode %d: opcode %d, %d bytes, want %d bytes", f.op, op, len(payload), len(f.payload))
			}
		}
	})

	// An h2c upgrade turns the connection into a tunnel that an h2c-capable
	// upstream reads as HTTP/2 requests for any path with any headers: a
	// complete bypass of routing, authentication and identity stripping.
	// DESIGN.md lets WebSocket upgrades pass, nothing else.
	t.Run("h2c upgrade is not tunnelled to the upstream", func(t *testing.T) {
		for _, path := range []string{"/api/health", "/api/articles/1"} {
			n := env.up.count()
			c := dialRaw(t, env.addr)
			c.send(t, rawRequest(http.MethodGet, path, "Upgrade: h2c", "Connection: Upgrade, HTTP2-Settings", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"))
			resp, body, err := c.read(http.MethodGet)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusSwitchingProtocols {
				// What a client behind the tunnel can now send.
				c.send(t, rawRequest(http.MethodGet, "/admin/users", "X-User-Id: 1", "X-User-Roles: administrator"))
				time.Sleep(200 * time.Millisecond)
				t.Errorf("GET %s with Upgrade: h2c was answered 101: the client has a raw tunnel to the upstream", path)
			}
			for _, s := range env.up.since(n) {
				if s.Header.Get("Upgrade") != "" {
					t.Errorf("GET %s: the upstream received Upgrade: %s (status %d %s)", path, s.Header.Get("Upgrade"), resp.StatusCode, body)
				}
			}
		}
		if tun := env.up.tunnelled(); len(tun) > 0 {
			t.Errorf("bytes reached the upstream through an h2c tunnel:\n%s", tun)
		}
	})
}

// TestSecurityFraming sends requests whose framing a front proxy and
// frontdoor could read differently. The connection must not be reused after
// an ambiguous one, and nothing smuggled may reach the upstream. net/http
// drops the Content-Length of a request that also carries Transfer-Encoding
// before frontdoor runs, so such a request is framed by Transfer-Encoding
// alone and its connection closed (RFC 9112 section 6.1); every other
// ambiguity is refused without reaching the upstream.
func TestSecurityFraming(t *testing.T) {
	t.Parallel()
	env := startSecEnv(t, secOptions{})
	author := "Authorization: Bearer " + env.token(t, "42", "author")
	// What a CL-honouring front proxy would take as part of the body, and
	// a TE-honouring back end as the next request.
	smuggled := "0\r\n\r\n" + rawRequest(http.MethodGet, "/api/admin/users", "X-User-Id: 1")
	post := func(headers ...string) string {
		return rawRequest(http.MethodPost, "/api/articles/1", append([]string{author}, headers...)...)
	}

	cases := []struct {
		name   string
		req    string
		status int
		code   string // "" where net/http answers in plain text before frontdoor runs
		// byTE: framed by Transfer-Encoding and proxied as the one POST,
		// without the request smuggled after its last chunk.
		byTE bool
	}{
		{"Content-Length and Transfer-Encoding", post("Content-Length: "+strconv.Itoa(len(smuggled)), "Transfer-Encoding: chunked") + smuggled, 200, "", true},
		{"Transfer-Encoding and Content-Length", post("Transfer-Encoding: chunked", "Content-Length: "+strconv.Itoa(len(smuggled))) + smuggled, 200, "", true},
		{"Content-Length 0 and Transfer-Encoding", post("Content-Length: 0", "Transfer-Encoding: chunked") + smuggled, 200, "", true},
		{"two different Content-Lengths", post("Content-Length: 5", "Content-Length: 6") + "hello!", 400, "", false},
		{"a Content-Length list", post("Content-Length: 5, 6") + "hello!", 400, "", false},
		{"Content-Length with a sign", post("Content-Length: +5") + "hello", 400, "", false},
		{"negative Content-Length", post("Content-Length: -1") + "hello", 400, "", false},
		{"Content-Length in hex", post("Content-Length: 0x5") + "hello", 400, "", false},
		{"Transfer-Encoding gzip, chunked", post("Transfer-Encoding: gzip, chunked") + "0\r\n\r\n", 501, "", false},
		{"two Transfer-Encoding headers", post("Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + "0\r\n\r\n", 501, "", false},
		{"Transfer-Encoding xchunked", post("Transfer-Encoding: xchunked") + "0\r\n\r\n", 501, "", false},
		{"Transfer-Encoding identity", post("Transfer-Encoding: identity") + "0\r\n\r\n", 501, "", false},
		{"space before the colon", rawRequest(http.MethodGet, "/api/health", "X-User-Id : 1"), 400, "", false},
		{"NUL in a header value", rawRequest(http.MethodGet, "/api/health", "X-Note: a\x00b"), 400, "", false},
		{"bare CR in a header value", rawRequest(http.MethodGet, "/api/health", "X-Note: a\rX-User-Id: 1"), 400, "", false},
		{"16 KiB header", rawRequest(http.MethodGet, "/api/health", "X-Big: "+strings.Repeat("a", 16<<10)), 431, "", false},
		{"300 small headers", rawRequest(http.MethodGet, "/api/health", manyHeaders(300, 60)...), 431, "", false},
		{"100 KB token", rawRequest(http.MethodGet, "/api/private/1", "Authorization: Bearer "+strings.Repeat("A", 100<<10)), 431, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := env.up.count()
			conn := dialRaw(t, env.addr)
			conn.send(t, c.req)
			resp, body, err := conn.read(http.MethodPost)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != c.status {
				t.Errorf("status %d %q, want %d", resp.StatusCode, body, c.status)
			}
			if c.code != "" {
				if problem := apiError(resp, body, c.status, c.code); problem != "" {
					t.Error(problem)
				}
			}
			if !conn.closedByPeer(3 * time.Second) {
				t.Error("the connection stayed open after an ambiguous request")
			}
			if !c.byTE {
				env.up.none(t, n)
				return
			}
			got := env.up.since(n)
			if len(got) != 1 || got[0].Method != http.MethodPost {
				t.Fatalf("upstream saw %d requests %+v, want only the POST", len(got), got)
			}
		})
	}

	t.Run("pipelined requests are each checked", func(t *testing.T) {
		n := env.up.count()
		conn := dialRaw(t, env.addr)
		conn.send(t, rawRequest(http.MethodGet, "/api/health")+rawRequest(http.MethodGet, "/api/admin/users", "X-User-Id: 1", "X-User-Roles: administrator"))
		resp, body, err := conn.read(http.MethodGet)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("first: %v %v %s", err, resp, body)
		}
		resp, body, err = conn.read(http.MethodGet)
		if err != nil {
			t.Fatal(err)
		}
		if problem := apiError(resp, body, http.StatusUnauthorized, "missing_token"); problem != "" {
			t.Error(problem)
		}
		if got := env.up.only(t, n); got.URI != "/api/health" {
			t.Errorf("the upstream received %s", got.URI)
		}
	})

	t.Run("slow headers are cut off at read_header_timeout", func(t *testing.T) {
		n := env.up.count()
		conn := dialRaw(t, env.addr)
		start := time.Now()
		conn.send(t, "GET /api/health HTTP/1.1\r\nHost: frontdoor.test\r\n")
		// Trickle one header line every 200 ms: each is progress, but the
		// deadline covers the whole header block.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := fmt.Fprintf(conn, "X-Slow-%d: 1\r\n", i); err != nil {
						return
					}
				}
			}
		}()
		resp, _, err := conn.read(http.MethodGet)
		elapsed := time.Since(start)
		if err == nil {
			t.Fatalf("a trickled request was answered %d", resp.StatusCode)
		}
		if isTimeout(err) {
			t.Fatal("the connection was still open after 30 s")
		}
		if elapsed < secReadHeaderTimeout-100*time.Millisecond || elapsed > secReadHeaderTimeout+5*time.Second {
			t.Errorf("closed after %v, want about read_header_timeout (%v)", elapsed, secReadHeaderTimeout)
		}
		env.up.none(t, n)
	})

	// Last: these requests reach the upstream (frontdoor streams bodies)
	// and may be recorded there after frontdoor has answered, so they
	// must not overlap another subtest's count of upstream requests.
	t.Run("malformed chunking is the client's fault", func(t *testing.T) {
		for _, body := range []string{"zz\r\nhello\r\n0\r\n\r\n", "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", "5\r\nhello world\r\n0\r\n\r\n"} {
			resp, got := env.roundTrip(t, post("Transfer-Encoding: chunked", "Content-Type: text/plain")+body)
			if problem := apiError(resp, got, http.StatusBadRequest, "invalid_request"); problem != "" {
				t.Errorf("chunked body %q: %s", body, problem)
			}
		}
	})
}

func manyHeaders(n, size int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("X-Filler-%03d: %s", i, strings.Repeat("f", size))
	}
	return h
}

func TestSecurityUpstreamFailures(t *testing.T) {
	t.Parallel()
	env := startSecEnv(t, secOptions{})

	t.Run("upstream down is 502 at once", func(t *testing.T) {
		// Twice: the first attempt marks the target down, the second finds
		// it marked; neither may wait for the 20 s timeout.
		for i := range 2 {
			start := time.Now()
			resp, body := do(t, http.MethodGet, env.base+"/api/down/x", "", nil)
			if problem := apiError(resp, body, http.StatusBadGateway, "bad_gateway"); problem != "" {
				t.Errorf("attempt %d: %s", i+1, problem)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("attempt %d: answered after %v: a refused connection must not wait for the timeout", i+1, d)
			}
		}
	})

	// The hanging cases run side by side: each waits for its timeout.
	for _, c := range []struct {
		name, path string
		timeout    time.Duration
	}{
		{"upstream hang is 504 at the route timeout", "/api/hang/x", secHangTimeout},
		{"upstream hang is 504 at the upstream timeout", "/api/hang/slow/x", secSlowTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			resp, body := do(t, http.MethodGet, env.base+c.path, "", nil)
			elapsed := time.Since(start)
			if problem := apiError(resp, body, http.StatusGatewayTimeout, "upstream_timeout"); problem != "" {
				t.Error(problem)
			}
			if elapsed < c.timeout || elapsed > c.timeout+5*time.Second {
				t.Errorf("answered after %v, want the timeout %v", elapsed, c.timeout)
			}
			// The abandoned upstream request is cancelled, not left running.
			select {
			case <-env.up.hangEnded:
			case <-time.After(5 * time.Second):
				t.Error("the upstream request was not cancelled after the timeout")
			}
		})
	}

	// The timeout bounds the wait for response headers only: a body that
	// streams for longer is passed through whole.
	t.Run("a body slower than the timeout is not cut", func(t *testing.T) {
		t.Parallel()
		resp, body := do(t, http.MethodGet, env.base+"/api/hang/trickle", "", nil)
		if resp.StatusCode != http.StatusOK || body != "headers in time, body later" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
	})
}

func TestSecurityLargeResponseStreams(t *testing.T) {
	t.Parallel()
	env := startSecEnv(t, secOptions{})
	pid := env.fd.cmd.Process.Pid
	before := vmHWM(t, pid)

	resp, err := http.Get(env.base + "/api/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 1<<20)
	head := make([]byte, len(secBigChunk))
	if _, err := io.ReadFull(br, head); err != nil || !bytes.Equal(head, secBigChunk) {
		t.Fatalf("the body does not start with the upstream's bytes: %v", err)
	}
	rest, err := io.Copy(io.Discard, br)
	if err != nil {
		t.Fatal(err)
	}
	if total := int64(len(head)) + rest; total != secBigSize {
		t.Fatalf("received %d bytes, want %d", total, secBigSize)
	}
	after := vmHWM(t, pid)
	const limit = 150 << 20
	t.Logf("frontdoor peak RSS %d MiB before, %d MiB after %d MiB passed through", before>>20, after>>20, secBigSize>>20)
	if after > limit {
		t.Errorf("frontdoor's peak RSS reached %d MiB streaming %d MiB: the body was buffered", after>>20, secBigSize>>20)
	}
}
