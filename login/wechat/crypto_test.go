package wechat

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
	"os"
	"strings"
	"testing"
)

// vectors mirrors testdata/wechat-vectors.json, a copy of WeChat's published
// test values kept inside the package so that the tests are self-contained.
type vectors struct {
	UserInfo struct {
		AppID         string `json:"appId"`
		SessionKey    string `json:"sessionKey"`
		IV            string `json:"iv"`
		EncryptedData string `json:"encryptedData"`
		Plaintext     string `json:"plaintext"`
	} `json:"userinfo_official_demo"`
	Signature struct {
		RawData    string `json:"rawData"`
		SessionKey string `json:"sessionKey"`
		Signature  string `json:"signature"`
	} `json:"rawdata_signature_official_doc"`
	Phone struct {
		AppID         string `json:"appId"`
		SessionKey    string `json:"sessionKey"`
		IV            string `json:"iv"`
		EncryptedData string `json:"encryptedData"`
		Plaintext     string `json:"plaintext"`
	} `json:"phone_derived_vector"`
}

func loadVectors(tb testing.TB) vectors {
	tb.Helper()
	b, err := os.ReadFile("testdata/wechat-vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatal(err)
	}
	if v.UserInfo.EncryptedData == "" || v.Signature.Signature == "" || v.Phone.EncryptedData == "" {
		tb.Fatal("testdata/wechat-vectors.json lacks a vector")
	}
	return v
}

// encryptCBC encrypts pt as the mini-program side does, with PKCS#7 padding
// when pad is set, or raw (pt must then be whole blocks) to forge paddings.
func encryptCBC(tb testing.TB, key, iv, pt []byte, pad bool) string {
	tb.Helper()
	if pad {
		n := aes.BlockSize - len(pt)%aes.BlockSize
		pt = append(bytes.Clone(pt), bytes.Repeat([]byte{byte(n)}, n)...)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	ct := make([]byte, len(pt))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, pt)
	return base64.StdEncoding.EncodeToString(ct)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestDecryptUserInfoOfficialDemo(t *testing.T) {
	v := loadVectors(t).UserInfo
	pt, err := DecryptData(v.SessionKey, v.EncryptedData, v.IV)
	if err != nil {
		t.Fatalf("DecryptData: %v", err)
	}
	if string(pt) != v.Plaintext {
		t.Fatalf("DecryptData = %q, want %q", pt, v.Plaintext)
	}
	ui, err := DecryptUserInfo(v.SessionKey, v.EncryptedData, v.IV, v.AppID)
	if err != nil {
		t.Fatalf("DecryptUserInfo: %v", err)
	}
	if ui.NickName != "Band" || ui.Gender != 1 ||
		ui.OpenID != "oGZUI0egBJY1zhBYw2KhdUfwVJJE" || ui.UnionID != "ocMvos6NjeKLIBqg5Mr9QjxrP1FA" ||
		!strings.HasPrefix(ui.AvatarURL, "http://wx.qlogo.cn/mmopen/") {
		t.Errorf("DecryptUserInfo = %+v", ui)
	}
	if ui.Watermark.AppID != "wx4f4bc4dec97d474b" || ui.Watermark.Timestamp != 1477314187 {
		t.Errorf("watermark = %+v", ui.Watermark)
	}
}

func TestDecryptDataPhoneVector(t *testing.T) {
	v := loadVectors(t).Phone
	pt, err := DecryptData(v.SessionKey, v.EncryptedData, v.IV)
	if err != nil {
		t.Fatalf("DecryptData: %v", err)
	}
	if string(pt) != v.Plaintext {
		t.Fatalf("DecryptData = %q, want %q", pt, v.Plaintext)
	}
	var phone struct {
		PhoneNumber string `json:"phoneNumber"`
	}
	if err := json.Unmarshal(pt, &phone); err != nil || phone.PhoneNumber != "13800138000" {
		t.Errorf("phone payload = %+v, %v", phone, err)
	}
}

func TestDecryptDataRejects(t *testing.T) {
	v := loadVectors(t).UserInfo
	key, _ := base64.StdEncoding.DecodeString(v.SessionKey)
	iv, _ := base64.StdEncoding.DecodeString(v.IV)
	ct, _ := base64.StdEncoding.DecodeString(v.EncryptedData)

	// Flipping bit 0 of the second-to-last ciphertext block flips bit 0 of
	// the last plaintext byte: the pad byte 0x07 becomes 0x06 while the
	// bytes before it stay 0x07.
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-aes.BlockSize-1] ^= 1

	// This other key happens to yield an invalid pad byte (checked by the
	// test itself: a wrong key could pass the padding check by chance).
	wrongKey := bytes.Repeat([]byte{0x42}, 16)

	block := func(last ...byte) []byte {
		b := bytes.Repeat([]byte{'x'}, aes.BlockSize-len(last))
		return append(b, last...)
	}

	tests := []struct {
		name          string
		key, data, iv string
		want          error
	}{
		{"tampered ciphertext", v.SessionKey, b64(tampered), v.IV, ErrDecrypt},
		{"wrong key", b64(wrongKey), v.EncryptedData, v.IV, ErrDecrypt},
		{"pad byte zero", v.SessionKey, encryptCBC(t, key, iv, block(0), false), v.IV, ErrDecrypt},
		{"pad byte 17", v.SessionKey, encryptCBC(t, key, iv, block(17), false), v.IV, ErrDecrypt},
		{"pad byte 0xff", v.SessionKey, encryptCBC(t, key, iv, block(0xff), false), v.IV, ErrDecrypt},
		{"pad bytes differ", v.SessionKey, encryptCBC(t, key, iv, block(3, 2, 3), false), v.IV, ErrDecrypt},
		{"pad bytes differ at the far end", v.SessionKey, encryptCBC(t, key, iv, append([]byte{15}, bytes.Repeat([]byte{16}, 15)...), false), v.IV, ErrDecrypt},
		{"15-byte key", b64(key[:15]), v.EncryptedData, v.IV, ErrBadInput},
		{"17-byte key", b64(append(bytes.Clone(key), 0)), v.EncryptedData, v.IV, ErrBadInput},
		{"32-byte key", b64(append(bytes.Clone(key), key...)), v.EncryptedData, v.IV, ErrBadInput},
		{"empty key", "", v.EncryptedData, v.IV, ErrBadInput},
		{"15-byte iv", v.SessionKey, v.EncryptedData, b64(iv[:15]), ErrBadInput},
		{"empty iv", v.SessionKey, v.EncryptedData, "", ErrBadInput},
		{"key not base64", "tiihtNczf5v6AKRyjwEUhQ=!", v.EncryptedData, v.IV, ErrBadInput},
		{"iv not base64", v.SessionKey, v.EncryptedData, "r7BXXKkLb8qrSNn05n0qiA", ErrBadInput},
		{"data not base64", v.SessionKey, v.EncryptedData[:len(v.EncryptedData)-1], v.IV, ErrBadInput},
		{"data in URL-safe base64", v.SessionKey, strings.NewReplacer("+", "-", "/", "_").Replace(v.EncryptedData), v.IV, ErrBadInput},
		{"empty ciphertext", v.SessionKey, "", v.IV, ErrBadInput},
		{"ciphertext of 15 bytes", v.SessionKey, b64(ct[:15]), v.IV, ErrBadInput},
		{"ciphertext not a multiple of 16", v.SessionKey, b64(ct[:len(ct)-1]), v.IV, ErrBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pt, err := DecryptData(tt.key, tt.data, tt.iv)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecryptData = %q, %v; want %v", pt, err, tt.want)
			}
			if pt != nil {
				t.Errorf("plaintext returned with error: %q", pt)
			}
			if strings.Contains(err.Error(), tt.key) && tt.key != "" {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

func TestDecryptDataRoundTrip(t *testing.T) {
	key := make([]byte, 16)
	iv := make([]byte, 16)
	rand.Read(key)
	rand.Read(iv)
	for n := 0; n <= 3*aes.BlockSize; n++ {
		pt := make([]byte, n)
		rand.Read(pt)
		got, err := DecryptData(b64(key), encryptCBC(t, key, iv, pt, true), b64(iv))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("len %d: DecryptData = %x, %v; want %x", n, got, err, pt)
		}
	}
}

func TestDecryptUserInfoRejects(t *testing.T) {
	v := loadVectors(t).UserInfo
	key, _ := base64.StdEncoding.DecodeString(v.SessionKey)
	iv, _ := base64.StdEncoding.DecodeString(v.IV)
	enc := func(s string) string { return encryptCBC(t, key, iv, []byte(s), true) }

	tests := []struct {
		name                 string
		key, data, iv, appID string
		want                 error
	}{
		{"foreign watermark", v.SessionKey, v.EncryptedData, v.IV, "wx0123456789abcdef", ErrWatermark},
		{"appid differs in case", v.SessionKey, v.EncryptedData, v.IV, strings.ToUpper(v.AppID), ErrWatermark},
		{"no watermark", v.SessionKey, enc(`{"nickName":"Band"}`), v.IV, v.AppID, ErrWatermark},
		{"empty watermark appid", v.SessionKey, enc(`{"watermark":{"appid":"","timestamp":1}}`), v.IV, v.AppID, ErrWatermark},
		{"no appid to check", v.SessionKey, v.EncryptedData, v.IV, "", ErrBadInput},
		{"plaintext not JSON", v.SessionKey, enc(`not json`), v.IV, v.AppID, ErrDecrypt},
		{"gender not a number", v.SessionKey, enc(`{"gender":"1","watermark":{"appid":"wx4f4bc4dec97d474b"}}`), v.IV, v.AppID, ErrDecrypt},
		{"wrong key", b64(bytes.Repeat([]byte{0x42}, 16)), v.EncryptedData, v.IV, v.AppID, ErrDecrypt},
		{"bad base64", v.SessionKey, "%%%", v.IV, v.AppID, ErrBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ui, err := DecryptUserInfo(tt.key, tt.data, tt.iv, tt.appID)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecryptUserInfo = %+v, %v; want %v", ui, err, tt.want)
			}
			if ui != (UserInfo{}) {
				t.Errorf("user info returned with error: %+v", ui)
			}
		})
	}
}

func TestVerifySignature(t *testing.T) {
	v := loadVectors(t).Signature
	if err := VerifySignature(v.RawData, v.SessionKey, v.Signature); err != nil {
		t.Fatalf("official vector: %v", err)
	}
	otherKey := "tiihtNczf5v6AKRyjwEUhQ=="
	tests := []struct {
		name                string
		raw, key, signature string
		want                error
	}{
		{"wrong signature", v.RawData, v.SessionKey, "0000000000000000000000000000000000000000", ErrBadSignature},
		// Upper-case hex is refused on purpose; see VerifySignature.
		{"upper-case hex", v.RawData, v.SessionKey, strings.ToUpper(v.Signature), ErrBadSignature},
		{"tampered rawData", strings.Replace(v.RawData, "Band", "Bond", 1), v.SessionKey, v.Signature, ErrBadSignature},
		{"other session key", v.RawData, otherKey, v.Signature, ErrBadSignature},
		{"truncated signature", v.RawData, v.SessionKey, v.Signature[:39], ErrBadSignature},
		{"signature with trailing space", v.RawData, v.SessionKey, v.Signature + " ", ErrBadSignature},
		{"empty signature", v.RawData, v.SessionKey, "", ErrBadSignature},
		{"sha1 of rawData alone", v.RawData, "", sha1Hex(v.RawData), ErrBadInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifySignature(tt.raw, tt.key, tt.signature); !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestUnpad(t *testing.T) {
	full := func(tail ...byte) []byte {
		return append(bytes.Repeat([]byte{'a'}, 32-len(tail)), tail...)
	}
	tests := []struct {
		name string
		in   []byte
		n    int
		ok   bool
	}{
		{"pad 1", full(1), 31, true},
		{"pad 2", full(2, 2), 30, true},
		{"pad 16", full(bytes.Repeat([]byte{16}, 16)...), 16, true},
		{"whole block of pad", bytes.Repeat([]byte{16}, 16), 0, true},
		{"pad 0", full(0), 0, false},
		{"pad 17", full(bytes.Repeat([]byte{17}, 17)...), 0, false},
		{"pad 2 with 1 before", full(1, 2), 0, false},
		{"pad 16 with one byte off", full(append([]byte{15}, bytes.Repeat([]byte{16}, 15)...)...), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := unpad(tt.in)
			if ok != tt.ok || (ok && n != tt.n) {
				t.Errorf("unpad = %d, %v; want %d, %v", n, ok, tt.n, tt.ok)
			}
		})
	}
}

func FuzzDecryptData(f *testing.F) {
	v := loadVectors(f)
	f.Add(v.UserInfo.SessionKey, v.UserInfo.EncryptedData, v.UserInfo.IV)
	f.Add(v.Phone.SessionKey, v.Phone.EncryptedData, v.Phone.IV)
	f.Add(v.UserInfo.SessionKey, "AAAAAAAAAAAAAAAAAAAAAA==", v.UserInfo.IV)
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, key, data, iv string) {
		pt, err := DecryptData(key, data, iv)
		if err != nil {
			if !errors.Is(err, ErrBadInput) && !errors.Is(err, ErrDecrypt) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Strict padding makes decryption injective: encrypting the
		// plaintext again must give back exactly the ciphertext.
		k, _ := base64.StdEncoding.DecodeString(key)
		i, _ := base64.StdEncoding.DecodeString(iv)
		ct, _ := base64.StdEncoding.DecodeString(data)
		if again := encryptCBC(t, k, i, pt, true); again != b64(ct) {
			t.Fatalf("plaintext %x does not re-encrypt to the ciphertext", pt)
		}
	})
}

func FuzzVerifySignature(f *testing.F) {
	v := loadVectors(f).Signature
	f.Add(v.RawData, v.SessionKey, v.Signature)
	f.Add(v.RawData, v.SessionKey, strings.ToUpper(v.Signature))
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, raw, key, signature string) {
		err := VerifySignature(raw, key, signature)
		if err == nil && (key == "" || signature != sha1Hex(raw+key)) {
			t.Fatalf("accepted signature %q", signature)
		}
		if key != "" && VerifySignature(raw, key, sha1Hex(raw+key)) != nil {
			t.Fatal("refused the right signature")
		}
	})
}

func FuzzDecryptUserInfo(f *testing.F) {
	vs := loadVectors(f)
	v := vs.UserInfo
	f.Add(v.SessionKey, v.EncryptedData, v.IV, v.AppID)
	f.Add(v.SessionKey, v.EncryptedData, v.IV, "wx0123456789abcdef")
	f.Add(vs.Phone.SessionKey, vs.Phone.EncryptedData, vs.Phone.IV, vs.Phone.AppID)
	f.Fuzz(func(t *testing.T, key, data, iv, appID string) {
		ui, err := DecryptUserInfo(key, data, iv, appID)
		if err != nil {
			if !errors.Is(err, ErrBadInput) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrWatermark) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if appID == "" || ui.Watermark.AppID != appID {
			t.Fatalf("accepted watermark %q for appid %q", ui.Watermark.AppID, appID)
		}
	})
}
