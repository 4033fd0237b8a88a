package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// An upstream that closes idle keep-alive connections quickly (Node's
// default is 5 s) must not turn into 502s: the binary notices a closed
// connection before reusing it, and never sends a POST twice.
func TestEndToEndUpstreamClosesIdleConnections(t *testing.T) {
	var opened, posts atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		io.WriteString(w, r.Method+" "+string(body))
	}))
	up.Config.IdleTimeout = 100 * time.Millisecond
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	cfg := writeConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	author := mint(t, cfg, "42", "author")
	base := "http://" + fd.addr + "/api/articles/1"

	const rounds = 5
	for i := 0; i < rounds; i++ {
		resp, body := do(t, http.MethodGet, base, "", nil)
		if resp.StatusCode != http.StatusOK || body != "GET " {
			t.Fatalf("round %d GET: %d %q", i, resp.StatusCode, body)
		}
		time.Sleep(200 * time.Millisecond) // the upstream closes the idle connection
		req, err := http.NewRequest(http.MethodPost, base, strings.NewReader("payload"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+author)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != http.StatusOK || string(b) != "POST payload" {
			t.Fatalf("round %d POST: %d %q", i, r.StatusCode, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if n := posts.Load(); n != rounds {
		t.Errorf("the upstream received %d POSTs, want %d", n, rounds)
	}
	// Every request after a pause needed a new connection; had the upstream
	// not closed them, this test would prove nothing.
	if n := opened.Load(); n < 2*rounds {
		t.Errorf("the upstream saw %d connections for %d spaced requests", n, 2*rounds)
	}
}

// A client that disconnects while its request waits on a slow upstream
// ends the upstream request too, as under net/http (and nginx, Kong): the
// upstream sees its connection close and its request context end.
func TestEndToEndClientLeavingCancelsUpstream(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan string, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ended <- "cancelled"
		case <-time.After(10 * time.Second):
			ended <- "still running 10 s after the client left"
		}
	}))
	t.Cleanup(up.Close)
	cfg := writeConfig(t, up.URL)
	fd := startFrontdoor(t, cfg)
	author := mint(t, cfg, "42", "author")

	c, err := net.Dial("tcp", fd.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /api/articles/1 HTTP/1.1\r\nHost: frontdoor\r\nAuthorization: Bearer "+author+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	c.Close()
	if got := <-ended; got != "cancelled" {
		t.Fatalf("upstream request after the client left: %s", got)
	}
}
