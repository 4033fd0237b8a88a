// Package wechat talks to WeChat's mini-program login API (code2Session) and
// decrypts and verifies the open data (encryptedData, the rawData signature)
// that a mini-program sends along with its login code.
//
// Nothing in this package logs, and no error it returns contains the
// AppSecret, the login code, an openid or a session key.
package wechat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/singleflight"
)

// Outcomes of code2Session; match them with errors.Is.
var (
	// ErrInvalidCode: the code is unknown, expired or already used
	// (errcode 40029, 40163). The user should call wx.login again.
	ErrInvalidCode = errors.New("wechat: invalid or already used login code")
	// ErrHighRisk: WeChat refuses the user as high-risk (errcode 40226).
	ErrHighRisk = errors.New("wechat: user refused as high-risk")
	// ErrRateLimited: the AppID hit WeChat's frequency limit (errcode 45011).
	ErrRateLimited = errors.New("wechat: API frequency limit reached")
	// ErrUnavailable: WeChat is busy, unreachable, slow, or answered
	// something unexpected.
	ErrUnavailable = errors.New("wechat: API unavailable")
)

// WeChat errcodes with a meaning of their own.
const (
	codeBusy        = -1
	codeInvalidCode = 40029
	codeUsedCode    = 40163
	codeHighRisk    = 40226
	codeRateLimited = 45011
)

// Results reported to an Observer.
const (
	ResultOK          = "ok"
	ResultInvalidCode = "invalid_code"
	ResultHighRisk    = "high_risk"
	ResultRateLimited = "rate_limited"
	ResultUnavailable = "unavailable"
)

const (
	// maxBody bounds what is read of an answer; a real one is ~100 bytes.
	maxBody = 64 << 10
	// maxCodeLen bounds the code put into the URL; real codes are 32 bytes.
	maxCodeLen = 256
	// maxMsgLen bounds the errmsg kept in an APIError.
	maxMsgLen = 200
)

// APIError is an errcode answer of WeChat. It unwraps to the sentinel error
// of its class (ErrInvalidCode, ErrHighRisk, ErrRateLimited, ErrUnavailable).
type APIError struct {
	Code int
	// Msg is WeChat's errmsg, shortened and with anything secret removed.
	Msg string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("wechat: code2Session errcode %d: %s", e.Code, e.Msg)
}

// Unwrap returns the sentinel error of the errcode's class.
func (e *APIError) Unwrap() error {
	switch e.Code {
	case codeInvalidCode, codeUsedCode:
		return ErrInvalidCode
	case codeHighRisk:
		return ErrHighRisk
	case codeRateLimited:
		return ErrRateLimited
	default:
		return ErrUnavailable
	}
}

// Session is the successful answer of code2Session.
type Session struct {
	OpenID  string
	UnionID string // empty unless the app is bound to an Open Platform account
	// SessionKey is base64, as WeChat sends it and as DecryptData and
	// VerifySignature take it.
	SessionKey string
}

// Observer receives one observation per code2Session exchange, retries
// included, for metrics. result is one of the Result* constants.
type Observer interface {
	ObserveCode2Session(result string, d time.Duration)
}

// Client calls code2Session. It is safe for concurrent use.
type Client struct {
	cfg      Config
	endpoint string // without query: safe to show in errors
	hc       *http.Client
	obs      Observer
	group    singleflight.Group
	// backoff holds the waits before each retry; its length is the number
	// of retries.
	backoff []time.Duration
}

// NewClient returns a client for cfg (defaults applied). hc may be nil for a
// client with its own transport; redirects are never followed either way,
// since WeChat does not redirect and a redirect would be a misconfiguration.
// obs may be nil.
func NewClient(cfg Config, hc *http.Client, obs Observer) *Client {
	cfg.ApplyDefaults()
	var c http.Client
	if hc != nil {
		c = *hc
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Logins come in bursts to a single host.
		t.MaxIdleConnsPerHost = 32
		c.Transport = t
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{
		cfg:      cfg,
		endpoint: strings.TrimRight(cfg.APIBase, "/") + "/sns/jscode2session",
		hc:       &c,
		obs:      obs,
		backoff:  []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
	}
}

// Code2Session exchanges a wx.login code for the user's openid, unionid and
// session key. The exchange is bounded by the configured timeout and by ctx.
//
// Concurrent calls with the same code share one request to WeChat: a
// mini-program that retries a slow login must not spend its single-use code
// twice. The shared request is not cancelled when one of its callers gives
// up; each caller stops waiting when its own ctx is done.
func (c *Client) Code2Session(ctx context.Context, code string) (Session, error) {
	if !c.cfg.Enabled() {
		return Session{}, fmt.Errorf("%w: WeChat login is not configured", ErrUnavailable)
	}
	if code == "" || len(code) > maxCodeLen {
		return Session{}, fmt.Errorf("%w: code is empty or longer than %d bytes", ErrInvalidCode, maxCodeLen)
	}
	if err := ctx.Err(); err != nil {
		return Session{}, fmt.Errorf("wechat: code2Session not started: %w: %w", ErrUnavailable, err)
	}
	ch := c.group.DoChan(code, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.Timeout)
		defer cancel()
		return c.exchange(ctx, code)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return Session{}, r.Err
		}
		return r.Val.(Session), nil
	case <-ctx.Done():
		return Session{}, fmt.Errorf("wechat: code2Session abandoned: %w: %w", ErrUnavailable, ctx.Err())
	}
}

func (c *Client) exchange(ctx context.Context, code string) (Session, error) {
	start := time.Now()
	s, err := c.attempts(ctx, code)
	if err != nil {
		err = c.redact(err, code)
	}
	if c.obs != nil {
		c.obs.ObserveCode2Session(result(err), time.Since(start))
	}
	return s, err
}

func (c *Client) attempts(ctx context.Context, code string) (Session, error) {
	answerLost := false
	for attempt := 0; ; attempt++ {
		s, err := c.once(ctx, code)
		if err == nil {
			return s, nil
		}
		var ae *APIError
		if answerLost && errors.As(err, &ae) && ae.Code == codeUsedCode {
			// An earlier attempt probably reached WeChat and spent the code
			// before its answer was lost; "code been used" would blame the
			// user for our network trouble.
			return Session{}, fmt.Errorf("%w: the answer to an earlier attempt was lost and the code is now spent", ErrUnavailable)
		}
		var te *transportError
		isTransport := errors.As(err, &te)
		busy := errors.As(err, &ae) && ae.Code == codeBusy
		if !(busy || isTransport) || attempt >= len(c.backoff) || ctx.Err() != nil {
			return Session{}, err
		}
		answerLost = answerLost || isTransport
		t := time.NewTimer(c.backoff[attempt])
		select {
		case <-ctx.Done():
			t.Stop()
			// The failure that made us wait says more than "deadline exceeded".
			return Session{}, err
		case <-t.C:
		}
	}
}

// once makes one request.
func (c *Client) once(ctx context.Context, code string) (Session, error) {
	q := url.Values{
		"appid":      {c.cfg.AppID},
		"secret":     {c.cfg.Secret},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint+"?"+q.Encode(), nil)
	if err != nil {
		// The parse error would quote the whole URL, secret included.
		return Session{}, fmt.Errorf("%w: cannot build a request to %s", ErrUnavailable, c.endpoint)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return Session{}, c.transportError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Session{}, c.transportError(err)
	}
	if resp.StatusCode != http.StatusOK {
		return Session{}, fmt.Errorf("%w: HTTP status %d", ErrUnavailable, resp.StatusCode)
	}
	if len(body) > maxBody {
		return Session{}, fmt.Errorf("%w: answer larger than %d bytes", ErrUnavailable, maxBody)
	}
	// WeChat labels its JSON text/plain, so the Content-Type is not checked.
	var r struct {
		OpenID     string `json:"openid"`
		SessionKey string `json:"session_key"`
		UnionID    string `json:"unionid"`
		ErrCode    int    `json:"errcode"`
		ErrMsg     string `json:"errmsg"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return Session{}, fmt.Errorf("%w: answer is not the expected JSON", ErrUnavailable)
	}
	if r.ErrCode != 0 {
		return Session{}, &APIError{Code: r.ErrCode, Msg: c.cleanMsg(r.ErrMsg, code)}
	}
	if r.OpenID == "" || r.SessionKey == "" {
		return Session{}, fmt.Errorf("%w: answer lacks openid or session_key", ErrUnavailable)
	}
	// Checked here so that a broken key surfaces as WeChat's fault rather
	// than as the client's bad encryptedData later on.
	if k, err := base64.StdEncoding.DecodeString(r.SessionKey); err != nil || len(k) != 16 {
		return Session{}, fmt.Errorf("%w: session_key is not 16 bytes of base64", ErrUnavailable)
	}
	return Session{OpenID: r.OpenID, UnionID: r.UnionID, SessionKey: r.SessionKey}, nil
}

// transportError is a failure of the HTTP exchange itself: the request may
// or may not have reached WeChat.
type transportError struct{ err error }

func (e *transportError) Error() string {
	return ErrUnavailable.Error() + ": " + e.err.Error()
}

func (e *transportError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// transportError wraps err, replacing the URL that net/http puts into its
// errors (query and secret included) by the bare endpoint.
func (c *Client) transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: c.endpoint, Err: ue.Err}
	}
	return &transportError{err: err}
}

// cleanMsg makes WeChat's errmsg safe to keep in an error: bounded, printable,
// and free of the secret and the code should a proxy on the way echo them.
func (c *Client) cleanMsg(msg, code string) string {
	msg = c.scrub(msg, code)
	msg = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, msg)
	if len(msg) > maxMsgLen {
		cut := maxMsgLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// scrub removes the secret and the code, raw and query-escaped, from s.
func (c *Client) scrub(s, code string) string {
	for _, v := range []string{c.cfg.Secret, code} {
		if v == "" {
			continue
		}
		s = strings.ReplaceAll(s, v, "[redacted]")
		if e := url.QueryEscape(v); e != v {
			s = strings.ReplaceAll(s, e, "[redacted]")
		}
	}
	return s
}

// redact is the last line of defence: the errors built above carry no
// secret, but a caller-supplied RoundTripper might put the request URL into
// its own. A redacted error keeps only what callers match on.
func (c *Client) redact(err error, code string) error {
	msg := err.Error()
	clean := c.scrub(msg, code)
	if clean == msg {
		return err
	}
	kept := []error{class(err)}
	for _, e := range []error{context.DeadlineExceeded, context.Canceled} {
		if errors.Is(err, e) {
			kept = append(kept, e)
		}
	}
	return &redactedError{msg: clean, errs: kept}
}

// redactedError shows a cleaned message and matches only the sentinels of
// the error it replaces, so nothing unclean can be unwrapped.
type redactedError struct {
	msg  string
	errs []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.errs }

// class returns the sentinel error that err matches.
func class(err error) error {
	for _, e := range []error{ErrInvalidCode, ErrHighRisk, ErrRateLimited} {
		if errors.Is(err, e) {
			return e
		}
	}
	return ErrUnavailable
}

func result(err error) string {
	if err == nil {
		return ResultOK
	}
	switch class(err) {
	case ErrInvalidCode:
		return ResultInvalidCode
	case ErrHighRisk:
		return ResultHighRisk
	case ErrRateLimited:
		return ResultRateLimited
	default:
		return ResultUnavailable
	}
}
