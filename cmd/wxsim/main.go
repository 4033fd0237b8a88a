// Command wxsim serves a simulator of WeChat's mini-program login API for
// development, demos and tests.
//
// Usage:
//
//	wxsim [-listen 127.0.0.1:9100] [-appid wx0123456789abcdef] [-secret S] [-code-ttl 5m]
//
// The secret defaults to $WXSIM_SECRET, else to a fixed development secret.
// wxsim prints its base URL alone on the first line of standard output (for
// scripts), a short how-to on standard error, and stops gracefully on
// SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/internal/h1"
)

// shutdownGrace bounds how long in-flight requests (slow ones, with latency
// injected) may take to finish on shutdown.
const shutdownGrace = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "wxsim:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "wxsim:", err)
		os.Exit(1)
	}
}

// errUsage marks command-line mistakes, which exit with status 2.
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("wxsim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:9100", "`address` to listen on (keep it on loopback)")
	appID := fs.String("appid", simulator.DefaultAppID, "the AppID the simulator knows")
	// No default shown: -h must not print a secret taken from the environment.
	secret := fs.String("secret", "", "the AppSecret of -appid (default $WXSIM_SECRET, else a development secret)")
	ttl := fs.Duration("code-ttl", simulator.DefaultCodeTTL, "how long a login code stays valid")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	}
	if *appID == "" {
		return fmt.Errorf("%w: -appid must not be empty", errUsage)
	}
	if *ttl <= 0 {
		return fmt.Errorf("%w: -code-ttl must be positive", errUsage)
	}
	if *secret == "" {
		*secret = getenv("WXSIM_SECRET")
	}
	if *secret == "" {
		*secret = simulator.DefaultSecret
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	sim := simulator.New(simulator.Options{Apps: map[string]string{*appID: *secret}, CodeTTL: *ttl})
	// frontdoor's own HTTP/1.1 server, with net/http for anything outside
	// its subset: the simulator shares the machine with frontdoor in
	// bench/run, and h1 costs it about a third less CPU per code2Session.
	srv := &h1.Server{
		Handler:           sim,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		Fallback: &http.Server{
			Handler:           sim,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
		},
	}
	base, loopback := baseURL(ln.Addr())
	fmt.Fprintln(stdout, base)
	if !loopback {
		fmt.Fprintf(stderr, "wxsim: WARNING: listening on %s, beyond loopback; the simulator hands out sessions to anyone who asks\n", ln.Addr())
	}
	fmt.Fprintf(stderr, `wxsim: WeChat API simulator for appid %s at %s
  set login.wechat.api_base to %s and login.wechat.appid to %s
  get a login code:  curl -s -X POST %s/sim/code -d '{"openid":"o-demo","nickname":"Demo"}'
  inject faults:     curl -s -X POST %s/sim/fault -d '{"errcode":-1,"count":2}'
`, *appID, base, base, *appID, base, base)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Requests still waiting out injected latency: cut them off.
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// baseURL returns the URL clients should use for addr, and whether addr is
// loopback only. An unspecified address (":9100") is reached on loopback.
func baseURL(addr net.Addr) (string, bool) {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "http://" + addr.String(), false
	}
	if tcp.IP.IsUnspecified() {
		return fmt.Sprintf("http://127.0.0.1:%d", tcp.Port), false
	}
	return "http://" + tcp.String(), tcp.IP.IsLoopback()
}
