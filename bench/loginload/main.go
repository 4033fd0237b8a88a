// Command loginload measures frontdoor's WeChat login throughput against the
// WeChat simulator (cmd/wxsim).
//
// Usage:
//
//	loginload -frontdoor URL -sim URL [-n 2000] [-c 16] [-repeat] [-profile=false]
//
// It first obtains -n fresh login codes from the simulator (POST /sim/code),
// each for a distinct openid never seen before, so that every login creates
// a user: the realistic worst case. Then -c workers post them to
// POST /auth/wx/login, with the encryptedData, iv, rawData and signature
// that the simulator returned unless -profile=false, and the logins per
// second, the latency percentiles and every failure are printed. Obtaining
// the codes is not timed. With -repeat a second pass logs the same users in
// again with fresh codes (returning users).
//
// Besides the human-readable report, each pass prints one line for scripts:
//
//	RESULT pass=new n=2000 ok=2000 failed=0 seconds=3.214 rate=622.3 p50_ms=24.1 p99_ms=61.0 loadgen_cpu_us=41
//
// The exit status is 1 when any login failed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "loginload:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "loginload:", err)
		os.Exit(1)
	}
}

var (
	errUsage  = errors.New("usage")
	errFailed = errors.New("some logins failed")
)

// options are the command-line flags.
type options struct {
	frontdoor, sim string
	// host is -frontdoor's host for the Host header, addr the same with
	// the port made explicit, for dialling.
	host, addr string
	n, c       int
	repeat     bool
	profile    bool
	timeout    time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("loginload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.frontdoor, "frontdoor", "", "base `URL` of frontdoor, e.g. http://127.0.0.1:8080")
	fs.StringVar(&o.sim, "sim", "", "base `URL` of the WeChat simulator, e.g. http://127.0.0.1:9100")
	fs.IntVar(&o.n, "n", 2000, "logins per pass")
	fs.IntVar(&o.c, "c", 16, "concurrent logins")
	fs.BoolVar(&o.repeat, "repeat", false, "add a second pass that logs the same users in again")
	fs.BoolVar(&o.profile, "profile", true, "send encryptedData, iv, rawData and signature with the code")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, fs.Args())
	case o.frontdoor == "" || o.sim == "":
		return fmt.Errorf("%w: -frontdoor and -sim are required", errUsage)
	case o.n <= 0 || o.c <= 0:
		return fmt.Errorf("%w: -n and -c must be positive", errUsage)
	case o.timeout <= 0:
		return fmt.Errorf("%w: -timeout must be positive", errUsage)
	}
	o.frontdoor = strings.TrimSuffix(o.frontdoor, "/")
	u, err := url.Parse(o.frontdoor)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.Path != "" {
		return fmt.Errorf("%w: -frontdoor must be a base URL like http://127.0.0.1:8080", errUsage)
	}
	o.host, o.addr = u.Host, u.Host
	if u.Port() == "" {
		o.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	o.sim = strings.TrimSuffix(o.sim, "/")

	client := &http.Client{
		Timeout: o.timeout,
		Transport: &http.Transport{
			MaxIdleConns:        o.c + 8,
			MaxIdleConnsPerHost: o.c + 8,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
	defer client.CloseIdleConnections()

	// A run id keeps the openids of this run apart from any earlier run's
	// against the same database, so that the first pass only creates users.
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	openIDs := make([]string, o.n)
	for i := range openIDs {
		openIDs[i] = fmt.Sprintf("o-bench-%x-%d", id, i)
	}

	type pass struct {
		name    string
		newUser bool
	}
	passes := []pass{{"new", true}}
	if o.repeat {
		passes = append(passes, pass{"repeat", false})
	}
	failed := false
	for _, p := range passes {
		bodies, err := fetchCodes(ctx, client, o, openIDs)
		if err != nil {
			return fmt.Errorf("get codes from the simulator: %w", err)
		}
		res, err := fire(ctx, o, bodies, p.newUser)
		if err != nil {
			return err
		}
		res.report(stdout, p.name, o)
		failed = failed || res.failed() > 0
	}
	if failed {
		return errFailed
	}
	return nil
}

// codeRequest and codeResponse are the simulator's POST /sim/code.
type codeRequest struct {
	OpenID   string `json:"openid"`
	NickName string `json:"nickname,omitempty"`
}

type codeResponse struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// loginRequest is the body of POST /auth/wx/login.
type loginRequest struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData,omitempty"`
	IV            string `json:"iv,omitempty"`
	RawData       string `json:"rawData,omitempty"`
	Signature     string `json:"signature,omitempty"`
}

// fetchCodes gets a fresh code for each openid and returns the login
// request bodies, ready to send.
func fetchCodes(ctx context.Context, client *http.Client, o options, openIDs []string) ([][]byte, error) {
	bodies := make([][]byte, len(openIDs))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(4, len(openIDs)) {
		wg.Go(func() {
			for i := range next {
				b, err := fetchCode(ctx, client, o, openIDs[i], i)
				if err != nil {
					cancel(err)
					continue
				}
				bodies[i] = b
			}
		})
	}
feed:
	for i := range openIDs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return bodies, nil
}

func fetchCode(ctx context.Context, client *http.Client, o options, openID string, i int) ([]byte, error) {
	reqBody, err := json.Marshal(codeRequest{OpenID: openID, NickName: fmt.Sprintf("bench user %d", i)})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.sim+"/sim/code", bytes.NewReader(reqBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST /sim/code: %s: %s", resp.Status, bytes.TrimSpace(data))
	}
	var cr codeResponse
	if err := json.Unmarshal(data, &cr); err != nil {
		return nil, fmt.Errorf("POST /sim/code: %w", err)
	}
	if cr.Code == "" {
		return nil, fmt.Errorf("POST /sim/code: no code in %s", bytes.TrimSpace(data))
	}
	lr := loginRequest{Code: cr.Code}
	if o.profile {
		lr.EncryptedData, lr.IV, lr.RawData, lr.Signature = cr.EncryptedData, cr.IV, cr.RawData, cr.Signature
	}
	return json.Marshal(lr)
}

// result is the outcome of one pass.
type result struct {
	elapsed   time.Duration
	selfCPU   time.Duration   // this process's CPU time during the pass
	latencies []time.Duration // of the successful logins
	byStatus  map[string]int  // failures by HTTP status or transport error
	samples   []string        // the first few failure descriptions
}

func (r *result) failed() int {
	n := 0
	for _, c := range r.byStatus {
		n += c
	}
	return n
}

// fire posts every body to /auth/wx/login from o.c workers, each on its own
// keep-alive connection. A login counts as successful when it answers 200
// with an access token and the expected new_user flag.
//
// The workers write ready-made requests and read the answers themselves, as
// wrk does, instead of going through http.Client: on this two-core machine
// the load generator shares the cores with frontdoor, and http.Client's two
// goroutines per connection cost several times more CPU per request than one
// synchronous write and read.
func fire(ctx context.Context, o options, bodies [][]byte, newUser bool) (*result, error) {
	requests := make([][]byte, len(bodies))
	for i, b := range bodies {
		requests[i] = loginRequestBytes(o.host, b)
	}

	var (
		mu  sync.Mutex
		res = &result{byStatus: map[string]int{}, latencies: make([]time.Duration, 0, len(bodies))}
		wg  sync.WaitGroup
	)
	fail := func(kind, detail string) {
		mu.Lock()
		defer mu.Unlock()
		res.byStatus[kind]++
		if len(res.samples) < 5 {
			res.samples = append(res.samples, kind+": "+detail)
		}
	}
	next := make(chan []byte, len(requests))
	for _, r := range requests {
		next <- r
	}
	close(next)
	cpu0 := processCPU()
	start := time.Now()
	for range o.c {
		wg.Go(func() {
			c := &loginConn{addr: o.addr, timeout: o.timeout}
			defer c.close()
			stop := context.AfterFunc(ctx, c.close)
			defer stop()
			for req := range next {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				kind, detail := c.login(req, newUser)
				d := time.Since(t0)
				if kind != "" {
					fail(kind, detail)
					continue
				}
				mu.Lock()
				res.latencies = append(res.latencies, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.selfCPU = processCPU() - cpu0
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// processCPU is the user and system CPU time this process has used. The
// load generator shares the machine with frontdoor, so its own cost is part
// of the report.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loginRequestBytes is the whole HTTP/1.1 request of one login.
func loginRequestBytes(host string, body []byte) []byte {
	head := fmt.Sprintf("POST /auth/wx/login HTTP/1.1\r\nHost: %s\r\nUser-Agent: frontdoor-loginload\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", host, len(body))
	return append([]byte(head), body...)
}

// loginConn is one worker's keep-alive connection to frontdoor. It dials on
// first use and again after any failure, so one broken exchange costs one
// login, not the rest of the worker's share.
type loginConn struct {
	addr    string
	timeout time.Duration

	mu     sync.Mutex // guards conn against close from ctx's AfterFunc
	conn   net.Conn
	closed bool
	br     *bufio.Reader
}

func (c *loginConn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.dropLocked()
}

func (c *loginConn) dropLocked() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// current returns the open connection, dialling one if needed.
func (c *loginConn) current() (net.Conn, *bufio.Reader, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, nil, net.ErrClosed
	}
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return nil, nil, err
		}
		c.conn = conn
		if c.br == nil {
			c.br = bufio.NewReaderSize(conn, 8<<10)
		} else {
			c.br.Reset(conn)
		}
	}
	return c.conn, c.br, nil
}

// login performs one login. It returns an empty kind on success, else the
// kind of failure (an HTTP status, "transport" or "unexpected") and a
// description.
func (c *loginConn) login(req []byte, newUser bool) (kind, detail string) {
	conn, br, err := c.current()
	if err != nil {
		return "transport", err.Error()
	}
	status, data, keep, err := exchange(conn, br, req, c.timeout)
	if err != nil || !keep {
		c.mu.Lock()
		if c.conn == conn {
			c.dropLocked()
		}
		c.mu.Unlock()
	}
	if err != nil {
		return "transport", err.Error()
	}
	return checkLogin(status, data, newUser)
}

// exchange writes req on conn and reads one response from br, with the
// whole exchange bounded by timeout. keep reports whether the connection
// may carry the next request.
//
// It reads only the response form that frontdoor sends (a Content-Length
// body), and so costs the shared cores about a third less than
// http.ReadResponse with its header map; anything else is an error.
func exchange(conn net.Conn, br *bufio.Reader, req []byte, timeout time.Duration) (status string, body []byte, keep bool, err error) {
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", nil, false, err
	}
	if _, err := conn.Write(req); err != nil {
		return "", nil, false, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return "", nil, false, err
	}
	// "HTTP/1.1 200 OK\r\n": the status is what follows the version.
	proto, rest, ok := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(" "))
	if !ok || !bytes.HasPrefix(proto, []byte("HTTP/1.")) || len(rest) < 3 {
		return "", nil, false, fmt.Errorf("malformed status line %q", line)
	}
	if !bytes.HasPrefix(rest, []byte("200")) {
		status = string(rest)
	}
	keep = bytes.Equal(proto, []byte("HTTP/1.1"))
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", nil, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return "", nil, false, fmt.Errorf("malformed header line %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > 1<<20 || length >= 0 {
				return "", nil, false, fmt.Errorf("bad Content-Length %q", value)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return "", nil, false, fmt.Errorf("unexpected Transfer-Encoding %q", value)
		case bytes.EqualFold(name, []byte("Connection")):
			for _, opt := range bytes.Split(value, []byte(",")) {
				if bytes.EqualFold(bytes.TrimSpace(opt), []byte("close")) {
					keep = false
				}
			}
		}
	}
	if length < 0 {
		return "", nil, false, errors.New("response without Content-Length")
	}
	body = make([]byte, length)
	if _, err := io.ReadFull(br, body); err != nil {
		return "", nil, false, err
	}
	return status, body, keep, nil
}

// checkLogin judges one answer: status is empty for a 200, which must carry
// a token response with the expected new_user flag. frontdoor writes its
// JSON compactly (encoding/json), so a search for the two members does;
// decoding every answer was a sixth of the load generator's CPU.
func checkLogin(status string, data []byte, newUser bool) (kind, detail string) {
	if status != "" {
		return status, string(bytes.TrimSpace(data))
	}
	token := []byte(`"access_token":"`)
	i := bytes.Index(data, token)
	if i < 0 || !bytes.HasPrefix(data, []byte("{")) || len(data) <= i+len(token) || data[i+len(token)] == '"' {
		return "unexpected", "200 without a token response: " + string(bytes.TrimSpace(data))
	}
	want := []byte(`"new_user":false`)
	if newUser {
		want = []byte(`"new_user":true`)
	}
	if !bytes.Contains(data, want) {
		return "unexpected", fmt.Sprintf("new_user is not %t in %s", newUser, bytes.TrimSpace(data))
	}
	return "", ""
}

func (r *result) report(w io.Writer, pass string, o options) {
	ok := len(r.latencies)
	slices.Sort(r.latencies)
	p50, p99 := percentile(r.latencies, 50), percentile(r.latencies, 99)
	rate := float64(ok) / r.elapsed.Seconds()
	what := "new users (each login creates a user)"
	if pass == "repeat" {
		what = "returning users"
	}
	fmt.Fprintf(w, "%s: %d logins, %d concurrent, profile data %t\n", what, ok+r.failed(), o.c, o.profile)
	n := ok + r.failed()
	loadgenUS := float64(r.selfCPU.Microseconds()) / float64(n)
	fmt.Fprintf(w, "  %d ok in %.3fs: %.1f logins/s; latency p50 %.1fms, p99 %.1fms; load generator CPU %.0f µs/login\n",
		ok, r.elapsed.Seconds(), rate, ms(p50), ms(p99), loadgenUS)
	if n := r.failed(); n > 0 {
		kinds := make([]string, 0, len(r.byStatus))
		for k := range r.byStatus {
			kinds = append(kinds, k)
		}
		slices.Sort(kinds)
		fmt.Fprintf(w, "  FAILED: %d logins:", n)
		for _, k := range kinds {
			fmt.Fprintf(w, " %s ×%d;", k, r.byStatus[k])
		}
		fmt.Fprintln(w)
		for _, s := range r.samples {
			fmt.Fprintf(w, "    e.g. %s\n", s)
		}
	}
	fmt.Fprintf(w, "RESULT pass=%s n=%d ok=%d failed=%d seconds=%.3f rate=%.1f p50_ms=%.2f p99_ms=%.2f loadgen_cpu_us=%.0f\n",
		pass, n, ok, r.failed(), r.elapsed.Seconds(), rate, ms(p50), ms(p99), loadgenUS)
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
