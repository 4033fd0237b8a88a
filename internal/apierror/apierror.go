// Package apierror writes frontdoor's one JSON error shape,
// {"error":"<code>","error_description":"<text>"}, shared by the proxy and the
// /auth/ API so that clients see the same contract everywhere.
package apierror

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error codes of the HTTP contract (DESIGN.md, "HTTP API").
const (
	InvalidRequest    = "invalid_request"
	InvalidGrant      = "invalid_grant"
	AccessDenied      = "access_denied"
	RateLimited       = "rate_limited"
	WeChatUnavailable = "wechat_unavailable"
	MissingToken      = "missing_token"
	InvalidToken      = "invalid_token"
	InsufficientScope = "insufficient_scope"
	NotFound          = "not_found"
	MethodNotAllowed  = "method_not_allowed"
	BadGateway        = "bad_gateway"
	UpstreamTimeout   = "upstream_timeout"
	ServerError       = "server_error"
	Unavailable       = "temporarily_unavailable"
)

// Write sends the JSON error body with status. For 401 it also sets the
// RFC 6750 WWW-Authenticate challenge, naming the error for invalid_token and
// insufficient_scope as the RFC asks (other 401s get a bare challenge).
func Write(w http.ResponseWriter, status int, code, description string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Length")
	if status == http.StatusUnauthorized {
		// RFC 6750 defines error= only for token problems; a failed login
		// (invalid_grant) still needs a challenge, but a bare one.
		if code == InvalidToken {
			h.Set("WWW-Authenticate", `Bearer realm="frontdoor", error="invalid_token"`)
		} else {
			h.Set("WWW-Authenticate", `Bearer realm="frontdoor"`)
		}
	}
	if status == http.StatusForbidden && code == InsufficientScope {
		h.Set("WWW-Authenticate", `Bearer realm="frontdoor", error="insufficient_scope"`)
	}
	body := Body(code, description)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Body renders the error JSON.
func Body(code, description string) []byte {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, description})
	return append(b, '\n')
}
