package bearer

import (
	"net/http"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		values  []string
		raw     string
		present bool
		problem bool
	}{
		{nil, "", false, false},
		{[]string{"Bearer abc.def.ghi"}, "abc.def.ghi", true, false},
		{[]string{"bearer abc"}, "abc", true, false},
		{[]string{"BEARER abc"}, "abc", true, false},
		{[]string{"Basic dXNlcjpwYXNz"}, "", false, false},
		{[]string{"Bearer"}, "", false, true},
		{[]string{"Bearer "}, "", false, true},
		{[]string{"Bearer  abc"}, "", false, true},
		{[]string{"Bearer abc def"}, "", false, true},
		{[]string{"Bearer a=b"}, "", false, true},
		{[]string{"Bearer abc", "Bearer def"}, "", false, true},
	}
	for _, tc := range tests {
		h := http.Header{}
		for _, v := range tc.values {
			h.Add("Authorization", v)
		}
		raw, present, problem := Parse(h)
		if raw != tc.raw || present != tc.present || (problem != "") != tc.problem {
			t.Errorf("%q: got (%q, %v, %q)", tc.values, raw, present, problem)
		}
	}
}
