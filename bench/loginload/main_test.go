package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeLogin answers POST /auth/wx/login for bodies {"code":"…"}: the code
// picks the answer, so that one pass can mix successes and failures.
type fakeLogin struct {
	t        *testing.T
	newUser  bool
	closeAll bool // answer every request with Connection: close
	requests atomic.Int64
}

func (f *fakeLogin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/auth/wx/login" || r.Header.Get("Content-Type") != "application/json" {
		f.t.Errorf("got %s %s with Content-Type %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	var req loginRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		f.t.Errorf("body: %v", err)
	}
	if f.closeAll {
		w.Header().Set("Connection", "close")
	}
	switch {
	case strings.HasPrefix(req.Code, "limited"):
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":"rate_limited"}`)
	case strings.HasPrefix(req.Code, "hangup"):
		// The connection dies without an answer.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			f.t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	case strings.HasPrefix(req.Code, "empty"):
		io.WriteString(w, `{}`)
	default:
		fmt.Fprintf(w, `{"access_token":"eyJ.x.y","token_type":"Bearer","new_user":%t}`, f.newUser)
	}
}

func bodiesFor(codes ...string) [][]byte {
	out := make([][]byte, len(codes))
	for i, c := range codes {
		out[i], _ = json.Marshal(loginRequest{Code: c})
	}
	return out
}

func repeatCodes(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

func TestFire(t *testing.T) {
	tests := []struct {
		name       string
		codes      []string
		serverNew  bool
		wantNew    bool
		closeAll   bool
		wantOK     int
		wantFailed map[string]int
	}{
		{name: "all succeed", codes: repeatCodes("ok", 50), serverNew: true, wantNew: true, wantOK: 50},
		{name: "returning users", codes: repeatCodes("ok", 20), wantOK: 20},
		{name: "new_user differs", codes: repeatCodes("ok", 5), serverNew: false, wantNew: true,
			wantFailed: map[string]int{"unexpected": 5}},
		{name: "no token", codes: append(repeatCodes("ok", 3), "empty-1"), serverNew: true, wantNew: true, wantOK: 3,
			wantFailed: map[string]int{"unexpected": 1}},
		{name: "error statuses", codes: append(repeatCodes("ok", 10), repeatCodes("limited", 4)...), wantOK: 10,
			wantFailed: map[string]int{"429 Too Many Requests": 4}},
		{name: "server closes after each answer", codes: repeatCodes("ok", 30), closeAll: true, wantOK: 30},
		{name: "connection dies mid-pass", codes: append(append(repeatCodes("ok", 10), "hangup-1", "hangup-2"), repeatCodes("more", 10)...),
			wantOK: 20, wantFailed: map[string]int{"transport": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeLogin{t: t, newUser: tt.serverNew, closeAll: tt.closeAll}
			srv := httptest.NewServer(f)
			defer srv.Close()
			o := options{frontdoor: srv.URL, host: srv.Listener.Addr().String(), addr: srv.Listener.Addr().String(), c: 4, timeout: 5 * time.Second}
			res, err := fire(context.Background(), o, bodiesFor(tt.codes...), tt.wantNew)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.latencies); got != tt.wantOK {
				t.Errorf("%d successful logins, want %d (failures %v, e.g. %q)", got, tt.wantOK, res.byStatus, res.samples)
			}
			if len(res.byStatus) != len(tt.wantFailed) {
				t.Errorf("failures %v, want %v", res.byStatus, tt.wantFailed)
			}
			for k, n := range tt.wantFailed {
				if res.byStatus[k] != n {
					t.Errorf("failures %v, want %v", res.byStatus, tt.wantFailed)
				}
			}
			if got := f.requests.Load(); got != int64(len(tt.codes)) {
				t.Errorf("the server saw %d requests, want one per code (%d)", got, len(tt.codes))
			}
		})
	}
}

func TestFireStopsWhenCancelled(t *testing.T) {
	// The server never answers: only cancellation ends the pass.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	o := options{frontdoor: srv.URL, host: srv.Listener.Addr().String(), addr: srv.Listener.Addr().String(), c: 2, timeout: time.Minute}
	done := make(chan error, 1)
	go func() {
		_, err := fire(ctx, o, bodiesFor(repeatCodes("ok", 10)...), true)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("fire returned no error after cancellation")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fire still running 10s after cancellation")
	}
}

func TestRunRejectsBadFrontdoorURL(t *testing.T) {
	for _, u := range []string{"https://127.0.0.1:1", "127.0.0.1:8080", "http://127.0.0.1:8080/api"} {
		err := run(context.Background(), []string{"-frontdoor", u, "-sim", "http://127.0.0.1:1"}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("-frontdoor %s: error %v, want a usage error", u, err)
		}
	}
}

func TestExchange(t *testing.T) {
	const token = `{"access_token":"eyJ.x.y","new_user":true}`
	tests := []struct {
		name       string
		response   string
		wantStatus string
		wantBody   string
		wantKeep   bool
		wantErr    bool
	}{
		{name: "200", response: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 42\r\n\r\n" + token,
			wantBody: token, wantKeep: true},
		{name: "error status", response: "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 2\r\n\r\n{}",
			wantStatus: "429 Too Many Requests", wantBody: "{}", wantKeep: true},
		{name: "Connection: close", response: "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\n{}",
			wantBody: "{}"},
		{name: "HTTP/1.0", response: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", wantBody: "{}"},
		{name: "bare LF", response: "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", wantBody: "{}", wantKeep: true},
		{name: "chunked", response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", wantErr: true},
		{name: "no length", response: "HTTP/1.1 200 OK\r\n\r\n{}", wantErr: true},
		{name: "two lengths", response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}", wantErr: true},
		{name: "bad length", response: "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", wantErr: true},
		{name: "short body", response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", wantErr: true},
		{name: "not HTTP", response: "SSH-2.0-OpenSSH\r\n\r\n", wantErr: true},
		{name: "header without colon", response: "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\n{}", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			go func() {
				defer server.Close()
				req := make([]byte, 3)
				if _, err := io.ReadFull(server, req); err != nil {
					return
				}
				io.WriteString(server, tt.response)
			}()
			status, body, keep, err := exchange(client, bufio.NewReader(client), []byte("GET"), 5*time.Second)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error; status %q body %q", status, body)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus || string(body) != tt.wantBody || keep != tt.wantKeep {
				t.Fatalf("got status %q body %q keep %t, want %q %q %t", status, body, keep, tt.wantStatus, tt.wantBody, tt.wantKeep)
			}
		})
	}
}

func TestCheckLogin(t *testing.T) {
	tests := []struct {
		body     string
		newUser  bool
		wantKind string
	}{
		{`{"access_token":"eyJ.x.y","token_type":"Bearer","new_user":true}`, true, ""},
		{`{"access_token":"eyJ.x.y","token_type":"Bearer","new_user":false}`, false, ""},
		{`{"access_token":"eyJ.x.y","new_user":false}`, true, "unexpected"},
		{`{"access_token":"","new_user":true}`, true, "unexpected"},
		{`{"access_token":"eyJ`, true, "unexpected"},
		{`{"new_user":true}`, true, "unexpected"},
		{`"access_token":"x","new_user":true`, true, "unexpected"},
	}
	for _, tt := range tests {
		if kind, _ := checkLogin("", []byte(tt.body), tt.newUser); kind != tt.wantKind {
			t.Errorf("checkLogin(%s, new_user %t) = %q, want %q", tt.body, tt.newUser, kind, tt.wantKind)
		}
	}
	if kind, _ := checkLogin("500 Internal Server Error", []byte(`{"error":"internal"}`), true); kind != "500 Internal Server Error" {
		t.Errorf("an error status gives kind %q", kind)
	}
}
