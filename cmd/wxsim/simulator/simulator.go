// Package simulator stands in for WeChat's mini-program login API during
// development, demos and tests. It serves /sns/jscode2session as WeChat does
// and adds /sim/ endpoints that play the mini-program's part: issuing a login
// code together with the encryptedData, iv, rawData and signature that
// wx.login and wx.getUserProfile would hand to the mini-program.
//
// The simulator encrypts and signs with its own code rather than with
// frontdoor's login/wechat package, so that each side checks the other.
package simulator

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults used when Options leave them out. DefaultAppID is the AppID of
// the shipped config.yaml example.
const (
	DefaultAppID   = "wx0123456789abcdef"
	DefaultSecret  = "wxsim-dev-secret"
	DefaultCodeTTL = 5 * time.Minute
)

const (
	// maxCodes bounds the codes remembered at once, used or not.
	maxCodes = 100_000
	// maxBody bounds the JSON bodies of the /sim/ endpoints.
	maxBody = 64 << 10
	// maxLatency bounds SetLatency, so that a typo cannot wedge a demo.
	maxLatency = 10 * time.Minute
)

// WeChat errcodes the simulator answers with.
const (
	errSystemBusy     = -1
	errInvalidGrant   = 40002
	errInvalidAppID   = 40013
	errInvalidCode    = 40029
	errInvalidSecret  = 40125
	errCodeUsed       = 40163
	errHighRisk       = 40226
	errAppIDMissing   = 41002
	errSecretMissing  = 41004
	errCodeMissing    = 41008
	errMinuteQuotaHit = 45011
)

// errmsg returns WeChat's own text for errcode.
func errmsg(errcode int) string {
	switch errcode {
	case errSystemBusy:
		return "system error"
	case errInvalidGrant:
		return "invalid grant_type"
	case errInvalidAppID:
		return "invalid appid"
	case errInvalidCode:
		return "invalid code"
	case errInvalidSecret:
		return "invalid appsecret"
	case errCodeUsed:
		return "code been used"
	case errHighRisk:
		return "high risk user"
	case errAppIDMissing:
		return "appid missing"
	case errSecretMissing:
		return "appsecret missing"
	case errCodeMissing:
		return "missing code"
	case errMinuteQuotaHit:
		return "api minute-quota reach limit  mustslower  retry next minute"
	default:
		return "simulated fault"
	}
}

// Errors of IssueCode; match them with errors.Is.
var (
	ErrUnknownApp   = errors.New("simulator: unknown appid")
	ErrBadRequest   = errors.New("simulator: bad code request")
	ErrTooManyCodes = errors.New("simulator: too many outstanding codes")
)

// Options configure a Simulator. The zero value gives one app,
// DefaultAppID with DefaultSecret.
type Options struct {
	// Apps maps each known AppID to its AppSecret.
	Apps map[string]string
	// CodeTTL is how long a code stays valid; default 5 minutes, as WeChat.
	CodeTTL time.Duration
	// Now is the clock for code expiry and watermarks; default time.Now.
	Now func() time.Time
	// Rand is the source of codes, session keys and ivs; default crypto/rand.
	Rand io.Reader
}

// CodeRequest asks for a login code, as POST /sim/code does.
type CodeRequest struct {
	// AppID defaults to the only app, or to the first in sorted order.
	AppID string `json:"appid"`
	// OpenID of the user; a fresh random one when empty.
	OpenID    string `json:"openid"`
	UnionID   string `json:"unionid,omitempty"`
	NickName  string `json:"nickname,omitempty"`
	AvatarURL string `json:"avatar_url,omitempty"`
	Gender    int    `json:"gender,omitempty"`
	// HighRisk makes WeChat refuse the code with errcode 40226.
	HighRisk bool `json:"high_risk,omitempty"`
}

// CodeResponse is what the mini-program would hold after wx.login and
// wx.getUserProfile: the code and the user's open data. OpenID is a
// convenience of the simulator; the real mini-program never sees it.
type CodeResponse struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
	OpenID        string `json:"openid"`
}

// Simulator is an http.Handler serving the WeChat and /sim/ endpoints. It is
// safe for concurrent use.
type Simulator struct {
	apps       map[string]string
	defaultApp string
	ttl        time.Duration
	now        func() time.Time
	mux        *http.ServeMux

	mu        sync.Mutex
	rand      io.Reader // guarded: a caller's reader need not be concurrency-safe
	codes     map[string]*grant
	nextSweep time.Time
	faultCode int
	faultLeft int
	latency   time.Duration
	calls     int
}

// grant is an issued code. A used code stays until it expires so that its
// reuse answers 40163 rather than 40029.
type grant struct {
	appID, openID, unionID, sessionKey string
	highRisk                           bool
	expires                            time.Time
	used                               bool
}

// New returns a simulator configured by opts.
func New(opts Options) *Simulator {
	s := &Simulator{
		apps:  make(map[string]string, len(opts.Apps)),
		ttl:   opts.CodeTTL,
		now:   opts.Now,
		rand:  opts.Rand,
		codes: make(map[string]*grant),
	}
	for id, secret := range opts.Apps {
		s.apps[id] = secret
	}
	if len(s.apps) == 0 {
		s.apps[DefaultAppID] = DefaultSecret
	}
	ids := make([]string, 0, len(s.apps))
	for id := range s.apps {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	s.defaultApp = ids[0]
	if s.ttl <= 0 {
		s.ttl = DefaultCodeTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /sns/jscode2session", s.serveCode2Session)
	s.mux.HandleFunc("POST /sim/code", s.serveCode)
	s.mux.HandleFunc("POST /sim/fault", s.serveFault)
	s.mux.HandleFunc("GET /sim/stats", s.serveStats)
	s.mux.HandleFunc("GET /{$}", s.serveIndex)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// FailNext makes the next n jscode2session calls answer errcode, before any
// check of their parameters, and without spending their codes. errcode 0 or
// n <= 0 clears a pending fault.
func (s *Simulator) FailNext(errcode, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if errcode == 0 || n <= 0 {
		s.faultCode, s.faultLeft = 0, 0
		return
	}
	s.faultCode, s.faultLeft = errcode, n
}

// SetLatency delays every jscode2session answer by d (at most 10 minutes).
// A request whose client gives up meanwhile gets no answer.
func (s *Simulator) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = min(max(d, 0), maxLatency)
}

// Calls returns the number of jscode2session requests received.
func (s *Simulator) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// IssueCode issues a fresh code for a user, as POST /sim/code does.
func (s *Simulator) IssueCode(req CodeRequest) (CodeResponse, error) {
	if err := checkRequest(req); err != nil {
		return CodeResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	appID := req.AppID
	if appID == "" {
		appID = s.defaultApp
	}
	if _, ok := s.apps[appID]; !ok {
		return CodeResponse{}, fmt.Errorf("%w %q", ErrUnknownApp, appID)
	}
	now := s.now()
	s.sweepLocked(now)
	if len(s.codes) >= maxCodes {
		return CodeResponse{}, fmt.Errorf("%w (%d within %v)", ErrTooManyCodes, maxCodes, s.ttl)
	}
	openID := req.OpenID
	if openID == "" {
		// Shaped like WeChat's: "o" and 27 URL-safe base64 characters.
		b, err := s.randomLocked(20)
		if err != nil {
			return CodeResponse{}, err
		}
		openID = "o" + base64.RawURLEncoding.EncodeToString(b)
	}
	nickName := req.NickName
	if nickName == "" {
		// What WeChat shows for a user who has not filled in a nickname.
		nickName = "微信用户"
	}
	var code string
	for code == "" || s.codes[code] != nil {
		b, err := s.randomLocked(24)
		if err != nil {
			return CodeResponse{}, err
		}
		code = base64.RawURLEncoding.EncodeToString(b)
	}
	keyIV, err := s.randomLocked(32)
	if err != nil {
		return CodeResponse{}, err
	}
	key, iv := keyIV[:16], keyIV[16:]
	sessionKey := base64.StdEncoding.EncodeToString(key)

	raw := rawData{
		NickName:  nickName,
		Gender:    req.Gender,
		Language:  "zh_CN",
		AvatarURL: req.AvatarURL,
	}
	info := userInfo{
		OpenID:    openID,
		NickName:  nickName,
		Gender:    req.Gender,
		Language:  "zh_CN",
		AvatarURL: req.AvatarURL,
		UnionID:   req.UnionID,
	}
	info.Watermark.Timestamp = now.Unix()
	info.Watermark.AppID = appID
	rawJSON, err := marshal(raw)
	if err != nil {
		return CodeResponse{}, err
	}
	infoJSON, err := marshal(info)
	if err != nil {
		return CodeResponse{}, err
	}
	ct, err := encrypt(key, iv, infoJSON)
	if err != nil {
		return CodeResponse{}, err
	}
	sig := sha1.Sum(slices.Concat(rawJSON, []byte(sessionKey)))

	s.codes[code] = &grant{
		appID:      appID,
		openID:     openID,
		unionID:    req.UnionID,
		sessionKey: sessionKey,
		highRisk:   req.HighRisk,
		expires:    now.Add(s.ttl),
	}
	return CodeResponse{
		Code:          code,
		EncryptedData: base64.StdEncoding.EncodeToString(ct),
		IV:            base64.StdEncoding.EncodeToString(iv),
		RawData:       string(rawJSON),
		Signature:     hex.EncodeToString(sig[:]),
		OpenID:        openID,
	}, nil
}

func checkRequest(req CodeRequest) error {
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"openid", req.OpenID, 128},
		{"unionid", req.UnionID, 128},
		{"nickname", req.NickName, 256},
		{"avatar_url", req.AvatarURL, 2048},
	} {
		if len(f.value) > f.max || !utf8.ValidString(f.value) {
			return fmt.Errorf("%w: %s must be valid UTF-8 of at most %d bytes", ErrBadRequest, f.name, f.max)
		}
	}
	if req.Gender < 0 || req.Gender > 2 {
		return fmt.Errorf("%w: gender must be 0, 1 or 2", ErrBadRequest)
	}
	return nil
}

// rawData is the signed, unencrypted profile, fields in WeChat's order.
type rawData struct {
	NickName  string `json:"nickName"`
	Gender    int    `json:"gender"`
	Language  string `json:"language"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	AvatarURL string `json:"avatarUrl"`
}

// userInfo is the plaintext of encryptedData, fields in WeChat's order.
type userInfo struct {
	OpenID    string `json:"openId"`
	NickName  string `json:"nickName"`
	Gender    int    `json:"gender"`
	Language  string `json:"language"`
	City      string `json:"city"`
	Province  string `json:"province"`
	Country   string `json:"country"`
	AvatarURL string `json:"avatarUrl"`
	UnionID   string `json:"unionId,omitempty"`
	Watermark struct {
		Timestamp int64  `json:"timestamp"`
		AppID     string `json:"appid"`
	} `json:"watermark"`
}

// marshal encodes like WeChat, which does not escape <, > and & in URLs.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// encrypt is AES-128-CBC with PKCS#7 padding, as WeChat encrypts open data.
func encrypt(key, iv, pt []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	n := aes.BlockSize - len(pt)%aes.BlockSize
	buf := append(slices.Clip(pt), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(buf, buf)
	return buf, nil
}

func (s *Simulator) randomLocked(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return nil, fmt.Errorf("simulator: reading randomness: %w", err)
	}
	return b, nil
}

// sweepLocked forgets expired codes, at most every quarter TTL unless the
// table is full, so that memory stays bounded without a background goroutine.
func (s *Simulator) sweepLocked(now time.Time) {
	if now.Before(s.nextSweep) && len(s.codes) < maxCodes {
		return
	}
	for code, g := range s.codes {
		if !now.Before(g.expires) {
			delete(s.codes, code)
		}
	}
	s.nextSweep = now.Add(s.ttl / 4)
}

// answer is a jscode2session reply, fields in WeChat's order.
type answer struct {
	ErrCode    int    `json:"errcode,omitempty"`
	ErrMsg     string `json:"errmsg,omitempty"`
	SessionKey string `json:"session_key,omitempty"`
	OpenID     string `json:"openid,omitempty"`
	UnionID    string `json:"unionid,omitempty"`
}

func (s *Simulator) serveCode2Session(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	a := s.exchange(r.URL.Query())
	body, _ := json.Marshal(a)
	// WeChat labels its JSON answers text/plain and always uses HTTP 200.
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (s *Simulator) exchange(q url.Values) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faultLeft > 0 {
		s.faultLeft--
		return s.errorLocked(s.faultCode)
	}
	appID, secret, code := q.Get("appid"), q.Get("secret"), q.Get("js_code")
	want, known := s.apps[appID]
	switch {
	case appID == "":
		return s.errorLocked(errAppIDMissing)
	case !known:
		return s.errorLocked(errInvalidAppID)
	case secret == "":
		return s.errorLocked(errSecretMissing)
	case secret != want:
		return s.errorLocked(errInvalidSecret)
	case q.Get("grant_type") != "authorization_code":
		return s.errorLocked(errInvalidGrant)
	case code == "":
		return s.errorLocked(errCodeMissing)
	}
	now := s.now()
	s.sweepLocked(now)
	g := s.codes[code]
	// Another app's code is unknown to this app, and is not spent by trying.
	if g == nil || g.appID != appID || !now.Before(g.expires) {
		return s.errorLocked(errInvalidCode)
	}
	if g.used {
		return s.errorLocked(errCodeUsed)
	}
	g.used = true
	if g.highRisk {
		return s.errorLocked(errHighRisk)
	}
	return answer{SessionKey: g.sessionKey, OpenID: g.openID, UnionID: g.unionID}
}

// errorLocked builds an errcode answer with WeChat's message and a request
// id, which real answers carry too.
func (s *Simulator) errorLocked(errcode int) answer {
	msg := errmsg(errcode)
	if b, err := s.randomLocked(12); err == nil {
		h := hex.EncodeToString(b)
		msg += ", rid: " + h[:8] + "-" + h[8:16] + "-" + h[16:]
	}
	return answer{ErrCode: errcode, ErrMsg: msg}
}

func (s *Simulator) serveCode(w http.ResponseWriter, r *http.Request) {
	var req CodeRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	resp, err := s.IssueCode(req)
	switch {
	case errors.Is(err, ErrUnknownApp), errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrTooManyCodes):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusOK, resp)
	}
}

// faultState is the body of POST /sim/fault's answer.
type faultState struct {
	ErrCode   int   `json:"errcode"`
	Remaining int   `json:"remaining"`
	LatencyMS int64 `json:"latency_ms"`
}

func (s *Simulator) serveFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ErrCode   *int   `json:"errcode"`
		Count     *int   `json:"count"`
		LatencyMS *int64 `json:"latency_ms"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch {
	case req.ErrCode == nil && req.LatencyMS == nil:
		writeError(w, http.StatusBadRequest, `give "errcode" (and "count", default 1) and/or "latency_ms"`)
		return
	case req.Count != nil && req.ErrCode == nil:
		writeError(w, http.StatusBadRequest, `"count" needs "errcode"`)
		return
	case req.Count != nil && *req.Count < 0:
		writeError(w, http.StatusBadRequest, `"count" must not be negative`)
		return
	case req.LatencyMS != nil && (*req.LatencyMS < 0 || *req.LatencyMS > maxLatency.Milliseconds()):
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`"latency_ms" must be within 0..%d`, maxLatency.Milliseconds()))
		return
	}
	if req.ErrCode != nil {
		n := 1
		if req.Count != nil {
			n = *req.Count
		}
		s.FailNext(*req.ErrCode, n)
	}
	if req.LatencyMS != nil {
		s.SetLatency(time.Duration(*req.LatencyMS) * time.Millisecond)
	}
	s.mu.Lock()
	st := faultState{ErrCode: s.faultCode, Remaining: s.faultLeft, LatencyMS: s.latency.Milliseconds()}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Simulator) serveStats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	st := struct {
		Calls int `json:"calls"`
		Codes int `json:"codes"`
	}{s.calls, len(s.codes)}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Simulator) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, `WeChat API simulator (development only)

GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
POST /sim/code   {"appid"?, "openid"?, "unionid"?, "nickname"?, "avatar_url"?, "gender"?, "high_risk"?}
POST /sim/fault  {"errcode": -1, "count": 2} and/or {"latency_ms": 200}
GET  /sim/stats
`)
}

// decodeBody reads one JSON object of at most maxBody bytes into v. An empty
// body leaves v as it is, so that `curl -X POST /sim/code` just works.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	// A misspelt field such as "avatarUrl" for "avatar_url" should not
	// pass silently. (Case alone does not matter to encoding/json.)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("bad JSON body: trailing data")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeError uses frontdoor's error shape, so tools that read one read both.
func writeError(w http.ResponseWriter, status int, msg string) {
	code := "invalid_request"
	switch status {
	case http.StatusServiceUnavailable:
		code = "temporarily_unavailable"
	case http.StatusInternalServerError:
		code = "server_error"
	}
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, msg})
}
