package login

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length limits. The minimum follows NIST SP 800-63B for
// passwords chosen by the user; the maximum bounds the work one request can
// ask of the hash and leaves plenty of room for pass phrases.
const (
	// MinPasswordRunes is the shortest new password, in characters.
	MinPasswordRunes = 8
	// MaxPasswordBytes is the longest password, in bytes of UTF-8.
	MaxPasswordBytes = 1024
)

// ErrPasswordPolicy is wrapped by every error of CheckPassword.
var ErrPasswordPolicy = errors.New("password policy")

// errMalformedHash means a stored password hash is not an argon2id PHC
// string this package can verify.
var errMalformedHash = errors.New("malformed password hash")

// Fixed parts of the encoding. 16 bytes of salt and a 32-byte tag are what
// RFC 9106 recommends; they are not configurable because nothing is gained
// by changing them.
const (
	argon2SaltLen = 16
	argon2KeyLen  = 32
)

// Bounds on parameters, applied both to the configuration and to stored
// hashes: a tampered or corrupt row must not make a login allocate
// gigabytes or spin for minutes.
const (
	maxArgon2MemoryKiB = 4 << 20 // 4 GiB
	maxArgon2Time      = 64
)

// argon2Params are the cost parameters of one argon2id hash.
type argon2Params struct {
	memoryKiB uint32
	time      uint32
	threads   uint8
}

// params are the parameters new hashes get under this configuration.
func (c PasswordConfig) params() argon2Params {
	return argon2Params{memoryKiB: c.Argon2MemoryKiB, time: c.Argon2Time, threads: c.Argon2Threads}
}

// problem reports what is wrong with p: the config key at fault and why,
// or two empty strings.
func (p argon2Params) problem() (field, msg string) {
	switch {
	case p.threads < 1:
		return "argon2_threads", "must be at least 1"
	case p.time < 1 || p.time > maxArgon2Time:
		return "argon2_time", fmt.Sprintf("must be between 1 and %d", maxArgon2Time)
	case p.memoryKiB < 8*uint32(p.threads):
		// argon2 needs 8 KiB per lane; it would silently raise a lower value,
		// and the PHC string would then lie about the memory used.
		return "argon2_memory_kib", fmt.Sprintf("must be at least 8 × argon2_threads (%d)", 8*uint32(p.threads))
	case p.memoryKiB > maxArgon2MemoryKiB:
		return "argon2_memory_kib", fmt.Sprintf("must be at most %d (4 GiB)", maxArgon2MemoryKiB)
	}
	return "", ""
}

// CheckPassword applies the policy for a new password: valid UTF-8 (it must
// be typeable into a JSON request), at least MinPasswordRunes characters and
// at most MaxPasswordBytes bytes. Passwords are otherwise taken literally:
// spaces count, nothing is trimmed or normalised.
func CheckPassword(password string) error {
	switch {
	case !utf8.ValidString(password):
		return fmt.Errorf("%w: the password is not valid UTF-8", ErrPasswordPolicy)
	case len(password) > MaxPasswordBytes:
		return fmt.Errorf("%w: the password is longer than %d bytes", ErrPasswordPolicy, MaxPasswordBytes)
	case utf8.RuneCountInString(password) < MinPasswordRunes:
		return fmt.Errorf("%w: the password is shorter than %d characters", ErrPasswordPolicy, MinPasswordRunes)
	}
	return nil
}

// HashPassword checks password against CheckPassword and returns its argon2id
// hash under cfg's parameters, as a PHC string:
//
//	$argon2id$v=19$m=65536,t=1,p=2$<salt>$<tag>
//
// (salt and tag in unpadded standard base64). The parameters travel with the
// hash, so changing them later leaves existing hashes verifiable.
func HashPassword(password string, cfg PasswordConfig) (string, error) {
	if err := CheckPassword(password); err != nil {
		return "", err
	}
	p := cfg.params()
	if field, msg := p.problem(); field != "" {
		return "", &ConfigError{"login.password." + field, msg}
	}
	return hashPassword(password, p), nil
}

// hashPassword hashes with a fresh random salt. p must have no problem.
func hashPassword(password string, p argon2Params) string {
	salt := make([]byte, argon2SaltLen)
	rand.Read(salt) // never fails (crypto/rand documents a crash instead)
	tag := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, argon2KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memoryKiB, p.time, p.threads, b64.EncodeToString(salt), b64.EncodeToString(tag))
}

// verifyPassword reports whether password matches the PHC string encoded,
// recomputing the hash under the parameters stored in it. It also returns
// those parameters, so that the caller can tell a hash made under older
// settings. The comparison takes the same time wherever the tags differ.
func verifyPassword(encoded, password string) (bool, argon2Params, error) {
	p, salt, tag, err := parsePHC(encoded)
	if err != nil {
		return false, argon2Params{}, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memoryKiB, p.threads, uint32(len(tag)))
	return subtle.ConstantTimeCompare(got, tag) == 1, p, nil
}

// parsePHC splits an argon2id PHC string. It is strict: one spelling per
// hash, bounded parameters, and salt and tag lengths that this package could
// have written or that other argon2id libraries commonly do.
func parsePHC(encoded string) (argon2Params, []byte, []byte, error) {
	var p argon2Params
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", errMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported argon2 version %q", errMalformedHash, parts[2])
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, fmt.Errorf("%w: want parameters m,t,p", errMalformedHash)
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok || v == "" || v[0] == '+' || (len(v) > 1 && v[0] == '0') {
			return p, nil, nil, fmt.Errorf("%w: bad parameter %q", errMalformedHash, fields[i])
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, nil, nil, fmt.Errorf("%w: bad parameter %q", errMalformedHash, fields[i])
		}
		vals[i] = n
	}
	if vals[2] > 255 {
		return p, nil, nil, fmt.Errorf("%w: too many threads", errMalformedHash)
	}
	p = argon2Params{memoryKiB: uint32(vals[0]), time: uint32(vals[1]), threads: uint8(vals[2])}
	if field, msg := p.problem(); field != "" {
		return p, nil, nil, fmt.Errorf("%w: %s %s", errMalformedHash, field, msg)
	}
	salt, ok := decodeB64(parts[4])
	if !ok || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad salt", errMalformedHash)
	}
	tag, ok := decodeB64(parts[5])
	if !ok || len(tag) < 16 || len(tag) > 64 {
		return p, nil, nil, fmt.Errorf("%w: bad hash", errMalformedHash)
	}
	return p, salt, tag, nil
}

// decodeB64 decodes unpadded standard base64, accepting only the canonical
// spelling: the decoder alone would skip line breaks.
func decodeB64(s string) ([]byte, bool) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	return b, err == nil && base64.RawStdEncoding.EncodeToString(b) == s
}

// dummyHash is the hash of a random password nobody knows. Logins of unknown
// usernames verify against it, so that they cost the same work as a wrong
// password for a real user.
func dummyHash(p argon2Params) string {
	pw := make([]byte, 32)
	rand.Read(pw)
	return hashPassword(base64.RawStdEncoding.EncodeToString(pw), p)
}
