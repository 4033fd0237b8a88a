package wechat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Errors of the open-data helpers; match them with errors.Is. Their texts
// never contain the key, the data or the signature.
var (
	// ErrBadInput means an argument is malformed: bad base64, a key or iv that
	// is not 16 bytes, or a ciphertext that is empty or not whole blocks.
	ErrBadInput = errors.New("wechat: malformed encrypted data")
	// ErrDecrypt means the data did not decrypt under the session key: bad
	// padding, or a plaintext that is not the expected JSON.
	ErrDecrypt = errors.New("wechat: data does not decrypt under the session key")
	// ErrBadSignature means rawData's signature does not match.
	ErrBadSignature = errors.New("wechat: rawData signature mismatch")
	// ErrWatermark means the decrypted data was issued to another AppID.
	ErrWatermark = errors.New("wechat: watermark is not for this appid")
)

// DecryptData decrypts a mini-program's encryptedData: AES-128-CBC under the
// base64 session key and iv, with PKCS#7 padding checked strictly (every pad
// byte equal, pad length 1..16), so that a tampered last block is refused
// rather than silently truncated.
func DecryptData(sessionKey, encryptedData, iv string) ([]byte, error) {
	key, err := decode16("session key", sessionKey)
	if err != nil {
		return nil, err
	}
	ivb, err := decode16("iv", iv)
	if err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(encryptedData)
	if err != nil {
		return nil, fmt.Errorf("%w: encryptedData is not base64", ErrBadInput)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: encryptedData is %d bytes, not a positive multiple of %d", ErrBadInput, len(ct), aes.BlockSize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(pt, ct)
	n, ok := unpad(pt)
	if !ok {
		return nil, fmt.Errorf("%w: bad padding", ErrDecrypt)
	}
	return pt[:n], nil
}

func decode16(what, s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not base64", ErrBadInput, what)
	}
	if len(b) != 16 {
		return nil, fmt.Errorf("%w: %s is %d bytes, want 16", ErrBadInput, what, len(b))
	}
	return b, nil
}

// unpad returns the length of the data before its PKCS#7 padding. It runs in
// time independent of the padding's value: a session key serves only one
// login today, but the check should not become a padding oracle if that
// ever changes.
func unpad(b []byte) (int, bool) {
	n := len(b)
	pad := int(b[n-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		// Bytes within the pad must equal pad; bytes before it are free.
		inPad := subtle.ConstantTimeLessOrEq(i, pad)
		eq := subtle.ConstantTimeByteEq(b[n-i], byte(pad))
		good &= eq | (inPad ^ 1)
	}
	return n - pad, good == 1
}

// VerifySignature checks rawData against the signature the mini-program got
// with it: lower-case hex(SHA-1(rawData + sessionKey)), where sessionKey is
// the base64 string as WeChat sent it.
//
// Upper-case hex is refused: WeChat emits lower-case only and its own sample
// code compares the strings exactly, so another spelling means the value was
// rewritten on the way.
func VerifySignature(rawData, sessionKey, signature string) error {
	if sessionKey == "" {
		// SHA-1 of rawData alone is computable by anyone.
		return fmt.Errorf("%w: empty session key", ErrBadInput)
	}
	sum := sha1.Sum([]byte(rawData + sessionKey))
	want := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(want), []byte(signature)) != 1 {
		return ErrBadSignature
	}
	return nil
}

// UserInfo is the decrypted userInfo of wx.getUserInfo/wx.getUserProfile.
// WeChat no longer puts OpenID and UnionID into newer payloads, so they may be
// empty; when present the caller must check OpenID against its session.
type UserInfo struct {
	OpenID    string `json:"openId"`
	UnionID   string `json:"unionId"`
	NickName  string `json:"nickName"`
	AvatarURL string `json:"avatarUrl"`
	// Gender is 0 (unknown), 1 (male) or 2 (female).
	Gender    int `json:"gender"`
	Watermark struct {
		AppID     string `json:"appid"`
		Timestamp int64  `json:"timestamp"`
	} `json:"watermark"`
}

// DecryptUserInfo decrypts encryptedData as userInfo JSON and checks that its
// watermark names appID, so data a user obtained in another mini-program
// cannot be replayed here.
func DecryptUserInfo(sessionKey, encryptedData, iv, appID string) (UserInfo, error) {
	if appID == "" {
		return UserInfo{}, fmt.Errorf("%w: no appid to check the watermark against", ErrBadInput)
	}
	pt, err := DecryptData(sessionKey, encryptedData, iv)
	if err != nil {
		return UserInfo{}, err
	}
	var ui UserInfo
	if err := json.Unmarshal(pt, &ui); err != nil {
		// A wrong key passes the padding check about once in 256 tries and
		// yields noise, so this is a decryption failure, not bad input.
		return UserInfo{}, fmt.Errorf("%w: plaintext is not userInfo JSON", ErrDecrypt)
	}
	if ui.Watermark.AppID != appID {
		return UserInfo{}, ErrWatermark
	}
	return ui, nil
}
