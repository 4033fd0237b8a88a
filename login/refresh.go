package login

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"frontdoor/internal/apierror"
	"frontdoor/internal/bearer"
	"frontdoor/login/session"
	"frontdoor/login/store"
)

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// maxRefreshTokenLen bounds what is hashed: ours are 43 characters.
const maxRefreshTokenLen = 256

// refresh rotates a refresh token: the old one dies, a new one and a new
// access token (with the user's current roles) are returned. Presenting a
// token that was already rotated is treated as theft: the whole family,
// including its newest token, is revoked.
func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, err.Error())
		return
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > maxRefreshTokenLen {
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, "refresh_token is required")
		return
	}
	ctx := r.Context()
	value, hash, err := session.NewRefreshToken()
	if err != nil {
		a.serverError(w, "new refresh token", err)
		return
	}
	now := a.now()
	next := store.RefreshToken{Hash: hash, IssuedAt: now, ExpiresAt: now.Add(a.tokens.RefreshTTL)}
	old, err := a.store.RotateRefreshToken(ctx, session.HashRefreshToken(req.RefreshToken), next, now)
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		a.metrics.refresh("reused")
		a.log.Warn("refresh token reused: session revoked", zap.String("user_id", strconv.FormatInt(old.UserID, 10)))
		apierror.Write(w, http.StatusUnauthorized, apierror.InvalidGrant, "the refresh token is invalid, expired or already used")
		return
	case errors.Is(err, store.ErrNotFound):
		a.metrics.refresh("invalid")
		apierror.Write(w, http.StatusUnauthorized, apierror.InvalidGrant, "the refresh token is invalid, expired or already used")
		return
	case err != nil:
		a.metrics.refresh("error")
		a.storeFailure(w, "rotate refresh token", err)
		return
	}
	u, err := a.store.UserByID(ctx, old.UserID)
	if err != nil {
		a.metrics.refresh("error")
		a.storeFailure(w, "load user", err)
		return
	}
	if u.Disabled {
		// The user was disabled after this session began: end it.
		_, _ = a.store.RevokeRefreshFamily(ctx, hash, now)
		a.metrics.refresh("disabled")
		apierror.Write(w, http.StatusForbidden, apierror.AccessDenied, "this account is disabled")
		return
	}
	next.FamilyID, next.UserID = old.FamilyID, old.UserID
	amr, _, _ := strings.Cut(old.FamilyID, ":")
	if err := a.writeTokens(ctx, w, u, amr, false, value, next); err != nil {
		a.metrics.refresh("error")
		a.serverError(w, "mint access token", err)
		return
	}
	a.metrics.refresh("ok")
}

// logout ends a session: the refresh token's family is revoked and, when the
// request carries its access token, that token's jti is denied until it
// expires. It answers 204 whether or not the refresh token was known, so it
// reveals nothing and can be retried safely.
func (a *API) logout(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if err := decodeJSON(w, r, &req, false); err != nil {
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, err.Error())
		return
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > maxRefreshTokenLen {
		apierror.Write(w, http.StatusBadRequest, apierror.InvalidRequest, "refresh_token is required")
		return
	}
	ctx := r.Context()
	now := a.now()
	if _, err := a.store.RevokeRefreshFamily(ctx, session.HashRefreshToken(req.RefreshToken), now); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.storeFailure(w, "revoke refresh family", err)
		return
	}
	if raw, present, _ := bearer.Parse(r.Header); present {
		// An access token that no longer verifies needs no denial.
		if claims, err := a.verifier.Verify(ctx, raw); err == nil && claims.ID != "" {
			if a.revoked != nil {
				a.revoked.Deny(claims.ID, claims.ExpiresAt)
			}
			if err := a.store.DenyJTI(ctx, claims.ID, claims.ExpiresAt, now); err != nil {
				a.storeFailure(w, "deny jti", err)
				return
			}
			a.metrics.revoked("logout")
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) serverError(w http.ResponseWriter, op string, err error) {
	a.log.Error("internal error", zap.String("op", op), zap.Error(err))
	apierror.Write(w, http.StatusInternalServerError, apierror.ServerError, "internal error")
}
