package login

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"frontdoor/internal/apierror"
	"frontdoor/login/store"
	"frontdoor/login/wechat"
)

// wxLoginRequest uses WeChat's own field names, so a mini-program can post
// what wx.login and wx.getUserProfile gave it unchanged. Extra fields (such
// as cloudID or userInfo) are ignored.
type wxLoginRequest struct {
	Code          string `json:"code"`
	EncryptedData string `json:"encryptedData"`
	IV            string `json:"iv"`
	RawData       string `json:"rawData"`
	Signature     string `json:"signature"`
}

// rawUserInfo is the signed rawData of wx.getUserProfile.
type rawUserInfo struct {
	NickName  string `json:"nickName"`
	AvatarURL string `json:"avatarUrl"`
	Gender    int    `json:"gender"`
}

// wxLogin exchanges a wx.login code for tokens. Nothing is stored until the
// code is exchanged and every piece of user data sent with it is verified:
// a failed login creates no user.
func (a *API) wxLogin(w http.ResponseWriter, r *http.Request) {
	const method = "wechat"
	s := a.settings.Load()
	if a.wechat == nil {
		apierror.Write(w, http.StatusNotFound, apierror.NotFound, "WeChat login is not configured")
		return
	}
	if !a.allowIP(w, r, s) {
		a.metrics.login(method, "rate_limited")
		return
	}
	var req wxLoginRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		a.refuse(w, method, "invalid_request", http.StatusBadRequest, apierror.InvalidRequest, err.Error())
		return
	}
	if msg := req.problem(); msg != "" {
		a.refuse(w, method, "invalid_request", http.StatusBadRequest, apierror.InvalidRequest, msg)
		return
	}

	sess, err := a.wechat.Code2Session(r.Context(), req.Code)
	if err != nil {
		a.wechatFailure(w, err)
		return
	}

	in := store.WeChatLogin{
		AppID:        s.cfg.WeChat.AppID,
		OpenID:       sess.OpenID,
		UnionID:      sess.UnionID,
		DefaultRoles: s.cfg.DefaultRoles,
		Now:          a.now(),
	}
	if req.Signature != "" {
		if err := wechat.VerifySignature(req.RawData, sess.SessionKey, req.Signature); err != nil {
			a.refuse(w, method, "bad_signature", http.StatusUnauthorized, apierror.InvalidGrant, "the signature of rawData does not match")
			return
		}
		var info rawUserInfo
		if err := json.Unmarshal([]byte(req.RawData), &info); err != nil {
			a.refuse(w, method, "invalid_request", http.StatusBadRequest, apierror.InvalidRequest, "rawData is not a JSON object")
			return
		}
		in.Profile = profileOf(info.NickName, info.AvatarURL, info.Gender)
	}
	if req.EncryptedData != "" {
		info, err := wechat.DecryptUserInfo(sess.SessionKey, req.EncryptedData, req.IV, s.cfg.WeChat.AppID)
		switch {
		case errors.Is(err, wechat.ErrBadInput):
			a.refuse(w, method, "invalid_request", http.StatusBadRequest, apierror.InvalidRequest, "encryptedData or iv is not valid base64 of the right length")
			return
		case err != nil:
			a.refuse(w, method, "bad_encrypted_data", http.StatusUnauthorized, apierror.InvalidGrant, "encryptedData could not be verified for this session")
			return
		case info.OpenID != "" && info.OpenID != sess.OpenID:
			a.refuse(w, method, "bad_encrypted_data", http.StatusUnauthorized, apierror.InvalidGrant, "encryptedData belongs to another user")
			return
		}
		if in.UnionID == "" {
			in.UnionID = info.UnionID
		}
		in.Profile = profileOf(info.NickName, info.AvatarURL, info.Gender)
	}
	in.SessionKey, err = a.sealer.Seal(sess.SessionKey)
	if err != nil {
		a.metrics.login(method, "error")
		a.storeFailure(w, "seal session key", err)
		return
	}

	// The user and its first refresh token are written in one transaction:
	// one commit per login, and a token that cannot be stored leaves no
	// user behind.
	refresh, first, err := a.newSession(method, in.Now)
	if err != nil {
		a.metrics.login(method, "error")
		a.log.Error("new session", zap.Error(err))
		apierror.Write(w, http.StatusInternalServerError, apierror.ServerError, "internal error")
		return
	}
	u, created, err := a.store.StartWeChatSession(r.Context(), in, first)
	if err != nil {
		a.metrics.login(method, "error")
		a.storeFailure(w, "start wechat session", err)
		return
	}
	if u.Disabled {
		a.refuse(w, method, "disabled", http.StatusForbidden, apierror.AccessDenied, "this account is disabled")
		return
	}
	first.UserID = u.ID
	if err := a.writeTokens(r.Context(), w, u, method, created, refresh, first); err != nil {
		a.metrics.login(method, "error")
		a.log.Error("issue tokens", zap.Error(err))
		apierror.Write(w, http.StatusInternalServerError, apierror.ServerError, "internal error")
		return
	}
	a.metrics.login(method, "ok")
	a.log.Info("login", zap.String("method", method), zap.String("user_id", strconv.FormatInt(u.ID, 10)), zap.Bool("new_user", created))
}

// problem checks the request's shape before anything is sent to WeChat.
func (req *wxLoginRequest) problem() string {
	switch {
	case req.Code == "":
		return "code is required"
	case len(req.Code) > 128 || !printableASCII(req.Code):
		return "code is malformed"
	case (req.EncryptedData == "") != (req.IV == ""):
		return "encryptedData and iv go together"
	case (req.RawData == "") != (req.Signature == ""):
		return "rawData and signature go together"
	}
	return ""
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// wechatPlaceholderNickname is what WeChat sends in userInfo since it stopped
// sharing real nicknames; it must not overwrite one the user chose through
// PATCH /auth/me.
const wechatPlaceholderNickname = "微信用户"

// profileOf keeps only sane values: WeChat data is verified, but still
// bounded before it is stored and shown.
func profileOf(nickname, avatarURL string, gender int) *store.Profile {
	p := &store.Profile{}
	if nickname != "" && nickname != wechatPlaceholderNickname && utf8.RuneCountInString(nickname) <= 64 &&
		strings.IndexFunc(nickname, unicode.IsControl) < 0 {
		p.Nickname = &nickname
	}
	if avatarURL != "" && validAvatarURL(avatarURL) {
		p.AvatarURL = &avatarURL
	}
	if gender >= 0 && gender <= 2 {
		p.Gender = &gender
	}
	return p
}

// wechatFailure maps a code2Session failure to the documented answer.
func (a *API) wechatFailure(w http.ResponseWriter, err error) {
	const method = "wechat"
	switch {
	case errors.Is(err, wechat.ErrInvalidCode):
		a.refuse(w, method, "invalid_code", http.StatusUnauthorized, apierror.InvalidGrant, "WeChat rejected the login code (invalid, expired or already used)")
	case errors.Is(err, wechat.ErrHighRisk):
		a.refuse(w, method, "high_risk", http.StatusForbidden, apierror.AccessDenied, "WeChat flagged this user as high-risk")
	case errors.Is(err, wechat.ErrRateLimited):
		w.Header().Set("Retry-After", "60")
		a.refuse(w, method, "wechat_rate_limited", http.StatusServiceUnavailable, apierror.RateLimited, "WeChat's frequency limit was reached; retry later")
	default:
		a.log.Warn("wechat code2Session failed", zap.Error(err))
		a.refuse(w, method, "wechat_unavailable", http.StatusBadGateway, apierror.WeChatUnavailable, "WeChat is unavailable; retry shortly")
	}
}

// refuse answers a failed login and counts it.
func (a *API) refuse(w http.ResponseWriter, method, result string, status int, code, msg string) {
	a.metrics.login(method, result)
	apierror.Write(w, status, code, msg)
}
