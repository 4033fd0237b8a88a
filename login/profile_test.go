package login

import "testing"

func TestProfileOfSkipsPlaceholderAndJunk(t *testing.T) {
	if p := profileOf("微信用户", "", 0); p.Nickname != nil {
		t.Error("WeChat's placeholder nickname would overwrite the user's own")
	}
	if p := profileOf("bad\x07name", "", 0); p.Nickname != nil {
		t.Error("a nickname with a control character was kept")
	}
	if p := profileOf("Band", "javascript:alert(1)", 7); p.Nickname == nil || *p.Nickname != "Band" || p.AvatarURL != nil || p.Gender != nil {
		t.Errorf("profile %+v", p)
	}
}
