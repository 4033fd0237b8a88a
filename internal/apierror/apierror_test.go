package apierror

import (
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		status    int
		code      string
		challenge string
	}{
		{401, MissingToken, `Bearer realm="frontdoor"`},
		{401, InvalidToken, `Bearer realm="frontdoor", error="invalid_token"`},
		{401, InvalidGrant, `Bearer realm="frontdoor"`},
		{403, InsufficientScope, `Bearer realm="frontdoor", error="insufficient_scope"`},
		{404, NotFound, ""},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		// A description with control bytes and non-ASCII must still be valid JSON.
		Write(w, tc.status, tc.code, "bad \x00 \a \"quote\" 中文")
		if w.Code != tc.status {
			t.Errorf("%s: status %d", tc.code, w.Code)
		}
		var body struct{ Error, Error_description string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: body %q is not JSON: %v", tc.code, w.Body.String(), err)
		}
		if body.Error != tc.code || body.Error_description != "bad \x00 \a \"quote\" 中文" {
			t.Errorf("%s: body %+v", tc.code, body)
		}
		if got := w.Header().Get("WWW-Authenticate"); got != tc.challenge {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tc.code, got, tc.challenge)
		}
		if w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) || w.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", tc.code, w.Header())
		}
	}
}
