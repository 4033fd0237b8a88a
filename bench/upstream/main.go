// Command upstream is the origin server of the load benchmark (bench/run):
// a minimal HTTP/1.1 server that answers every request with the same small
// JSON body over keep-alive connections, so that the benchmark measures the
// proxy in front of it rather than the upstream's own work.
//
// Usage:
//
//	upstream [-listen 127.0.0.1:0]
//
// It prints its base URL alone on the first line of standard output and
// stops gracefully on SIGINT or SIGTERM.
//
// A request carrying the header "X-Bench-Echo: 1" is answered with the
// identity headers it arrived with copied into X-Seen-User-Id and
// X-Seen-User-Roles, so that the benchmark can check, before it measures,
// that the proxy under test authenticated the request and injected them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// body is the fixed response: 64 bytes of JSON, the size of a small API
// answer.
var body = []byte(`{"id":42,"name":"benchmark item #1","tags":["a","b"],"ok":true}` + "\n")

// Precomputed header values, so that every response costs the same and
// allocates as little as possible.
var (
	contentType   = []string{"application/json"}
	contentLength = []string{strconv.Itoa(len(body))}
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "`address` to listen on")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "upstream: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *listen); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	srv := &http.Server{
		Handler:           http.HandlerFunc(serve),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = contentLength
	if r.Header.Get("X-Bench-Echo") == "1" {
		h.Set("X-Seen-User-Id", r.Header.Get("X-User-Id"))
		h.Set("X-Seen-User-Roles", r.Header.Get("X-User-Roles"))
		h.Set("X-Seen-Authorization", strconv.FormatBool(r.Header.Get("Authorization") != ""))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write(body)
}
