package login

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"frontdoor/internal/apierror"
	"frontdoor/login/store"
)

type meView struct {
	userView
	Capabilities []string `json:"capabilities"`
}

// getMe returns the caller's profile with roles as stored now and
// capabilities computed from the current policy.
func (a *API) getMe(w http.ResponseWriter, r *http.Request) {
	u, ok := a.currentUser(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, a.meOf(u))
}

type patchMeRequest struct {
	Nickname  *string `json:"nickname"`
	AvatarURL *string `json:"avatar_url"`
}

// patchMe is WeChat's avatar/nickname fill-in flow: the mini-program sends
// what the user chose. The caller is authenticated before its body is read,
// so a client without a valid token always learns that first (401).
func (a *API) patchMe(w http.ResponseWriter, r *http.Request) {
	u, ok := a.currentUser(w, r)
	if !ok {
		return
	}
	var req patchMeRequest
	if err := decodeJSON(w, r, &req, true); err != nil {
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, err.Error())
		return
	}
	if req.Nickname != nil {
		n := strings.TrimSpace(*req.Nickname)
		if c := utf8.RuneCountInString(n); c < 1 || c > 64 || !utf8.ValidString(n) || strings.IndexFunc(n, unicode.IsControl) >= 0 {
			apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, "nickname must be 1 to 64 printable characters")
			return
		}
		req.Nickname = &n
	}
	if req.AvatarURL != nil && !validAvatarURL(*req.AvatarURL) {
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, "avatar_url must be an http(s) URL of at most 1024 bytes")
		return
	}
	u, err := a.store.UpdateProfile(r.Context(), u.ID, store.Profile{Nickname: req.Nickname, AvatarURL: req.AvatarURL}, a.now())
	if err != nil {
		a.storeFailure(w, "update profile", err)
		return
	}
	writeJSON(w, http.StatusOK, a.meOf(u))
}

func (a *API) meOf(u store.User) meView {
	v := meView{userView: viewOf(u), Capabilities: []string{}}
	if pol := a.settings.Load().policy; pol != nil {
		if caps := pol.Capabilities(u.Roles); caps != nil {
			v.Capabilities = caps
		}
	}
	return v
}

// currentUser authenticates the request and loads its user.
func (a *API) currentUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	claims, ok := a.authenticate(w, r)
	if !ok {
		return store.User{}, false
	}
	id, err := strconv.ParseInt(claims.Subject, 10, 64)
	if err != nil {
		// A token of this issuer whose subject is not one of our users
		// (an operator's minted token, say): there is no profile.
		apierror.Write(w, http.StatusNotFound, apierror.NotFound, "the token's subject is not a frontdoor user")
		return store.User{}, false
	}
	u, err := a.store.UserByID(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		apierror.Write(w, http.StatusNotFound, apierror.NotFound, "the token's subject is not a frontdoor user")
		return store.User{}, false
	case err != nil:
		a.storeFailure(w, "load user", err)
		return store.User{}, false
	case u.Disabled:
		apierror.Write(w, http.StatusForbidden, apierror.AccessDenied, "this account is disabled")
		return store.User{}, false
	}
	return u, true
}

func validAvatarURL(s string) bool {
	if len(s) == 0 || len(s) > 1024 {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}
