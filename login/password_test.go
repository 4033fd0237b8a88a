package login

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// cheap are parameters that make tests fast; they are valid but far too weak
// for production.
var cheap = PasswordConfig{Enabled: true, Argon2MemoryKiB: 64, Argon2Time: 1, Argon2Threads: 1}

func TestHashPasswordRoundTrip(t *testing.T) {
	cfg := PasswordConfig{Argon2MemoryKiB: 256, Argon2Time: 2, Argon2Threads: 2}
	h1, err := HashPassword("correct horse battery", cfg)
	if err != nil {
		t.Fatal(err)
	}
	phc := regexp.MustCompile(`^\$argon2id\$v=19\$m=256,t=2,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)
	if !phc.MatchString(h1) {
		t.Fatalf("hash %q is not the expected PHC string", h1)
	}
	h2, err := HashPassword("correct horse battery", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	for _, c := range []struct {
		password string
		want     bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"correct horse battery ", false},
		{"correct horse batter", false},
		{"", false},
	} {
		ok, p, err := verifyPassword(h1, c.password)
		if err != nil || ok != c.want {
			t.Errorf("verify %q: %v %v, want %v", c.password, ok, err, c.want)
		}
		if p != cfg.params() {
			t.Errorf("verify reported parameters %+v, want %+v", p, cfg.params())
		}
	}
}

// The reference implementation's test vectors (phc-winner-argon2 test.c)
// verify: our encoding is the interoperable PHC one.
func TestVerifyReferenceVectors(t *testing.T) {
	for _, h := range []string{
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc",
		"$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc",
	} {
		if ok, _, err := verifyPassword(h, "password"); !ok || err != nil {
			t.Errorf("%s does not verify: %v", h, err)
		}
		if ok, _, _ := verifyPassword(h, "passwore"); ok {
			t.Errorf("%s verifies a wrong password", h)
		}
	}
}

func TestParsePHCRejectsMalformed(t *testing.T) {
	const salt, tag = "c29tZXNhbHQ", "nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	for _, h := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=256,t=2,p=1$" + salt + "$" + tag,
		"$argon2d$v=19$m=256,t=2,p=1$" + salt + "$" + tag,
		"$argon2id$v=16$m=256,t=2,p=1$" + salt + "$" + tag,
		"$argon2id$m=256,t=2,p=1$" + salt + "$" + tag, // no version
		"$argon2id$v=19$m=256,t=2$" + salt + "$" + tag,
		"$argon2id$v=19$t=2,m=256,p=1$" + salt + "$" + tag,
		"$argon2id$v=19$m=256,t=2,p=1,k=1$" + salt + "$" + tag,
		"$argon2id$v=19$m=0256,t=2,p=1$" + salt + "$" + tag,
		"$argon2id$v=19$m=+256,t=2,p=1$" + salt + "$" + tag,
		"$argon2id$v=19$m=256,t=0,p=1$" + salt + "$" + tag,
		"$argon2id$v=19$m=256,t=2,p=0$" + salt + "$" + tag,
		"$argon2id$v=19$m=256,t=2,p=256$" + salt + "$" + tag,
		"$argon2id$v=19$m=8,t=2,p=4$" + salt + "$" + tag,                       // below 8 KiB per lane
		"$argon2id$v=19$m=4294967295,t=2,p=1$" + salt + "$" + tag,              // would allocate 4 TiB
		"$argon2id$v=19$m=256,t=1000000,p=1$" + salt + "$" + tag,               // would spin for ever
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "=$" + tag,                    // padded
		"$argon2id$v=19$m=256,t=2,p=1$c29t$" + tag,                             // 3-byte salt
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + tag[:10],                // short tag
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + tag + "$",               // trailing field
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + "!!" + tag[2:],          // not base64
		"x$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + tag,                    // junk before
		"$argon2id$v=19$m=256,t=2,p=1$" + salt + "$" + tag + "\n",              // junk after
		"$argon2id$v=19$m=99999999999999,t=2,p=1$" + salt + "$" + tag,          // overflows uint32
		"$argon2id$v=19$m=256,t=2,p=-1$" + salt + "$" + tag,                    // negative
		"$argon2id$v=19$m=256,t=2,p=1$" + strings.Repeat("A", 100) + "$" + tag, // 75-byte salt
	} {
		if ok, _, err := verifyPassword(h, "password"); ok || !errors.Is(err, errMalformedHash) {
			t.Errorf("%q: ok=%v err=%v, want errMalformedHash", h, ok, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	for _, c := range []struct {
		name, password string
		ok             bool
	}{
		{"seven characters", "1234567", false},
		{"eight characters", "12345678", true},
		{"eight CJK characters (24 bytes)", "密码密码密码密码", true},
		{"seven CJK characters (21 bytes)", "密码密码密码密", false},
		{"spaces count", "        ", true},
		{"empty", "", false},
		{"1024 bytes", strings.Repeat("a", MaxPasswordBytes), true},
		{"1025 bytes", strings.Repeat("a", MaxPasswordBytes+1), false},
		{"invalid UTF-8", "abcdefgh\xff", false},
	} {
		err := CheckPassword(c.password)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrPasswordPolicy) {
			t.Errorf("%s: %v does not wrap ErrPasswordPolicy", c.name, err)
		}
		if _, herr := HashPassword(c.password, cheap); (herr == nil) != c.ok {
			t.Errorf("%s: HashPassword: %v, want ok=%v", c.name, herr, c.ok)
		}
	}
}

func TestCheckUsername(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"admin' OR '1'='1", true},
		{`admin"--`, true},
		{"admin ", true},
		{"Ünïcødé 用户", true},
		{"a1", true},
		{"", false},
		{"42", false},
		{"007", false},
		{"tab\there", false},
		{"nl\n", false},
		{"nul\x00", false},
		{"\u0085next-line", false},
		{"bad\xffutf8", false},
		{strings.Repeat("u", MaxUsernameBytes), true},
		{strings.Repeat("u", MaxUsernameBytes+1), false},
	} {
		err := CheckUsername(c.name)
		if (err == nil) != c.ok {
			t.Errorf("%q: %v, want ok=%v", c.name, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrUsernamePolicy) {
			t.Errorf("%q: %v does not wrap ErrUsernamePolicy", c.name, err)
		}
	}
}

func TestPasswordConfigValidation(t *testing.T) {
	var def Config
	def.ApplyDefaults()
	if p := def.Password; p.Argon2MemoryKiB != 65536 || p.Argon2Time != 1 || p.Argon2Threads != 2 {
		t.Errorf("defaults %+v", p)
	}
	if errs := def.Validate(nil); len(errs) != 0 {
		t.Errorf("defaults invalid: %v", errs)
	}
	for _, c := range []struct {
		mutate func(*PasswordConfig)
		path   string
	}{
		{func(p *PasswordConfig) { p.Argon2Threads = 0 }, "login.password.argon2_threads"},
		{func(p *PasswordConfig) { p.Argon2Time = 0 }, "login.password.argon2_time"},
		{func(p *PasswordConfig) { p.Argon2Time = maxArgon2Time + 1 }, "login.password.argon2_time"},
		{func(p *PasswordConfig) { p.Argon2MemoryKiB = 8; p.Argon2Threads = 2 }, "login.password.argon2_memory_kib"},
		{func(p *PasswordConfig) { p.Argon2MemoryKiB = maxArgon2MemoryKiB + 1 }, "login.password.argon2_memory_kib"},
	} {
		cfg := def
		c.mutate(&cfg.Password)
		errs := cfg.Validate(nil)
		var ce *ConfigError
		if len(errs) != 1 || !errors.As(errs[0], &ce) || ce.Path != c.path {
			t.Errorf("want one error at %s, got %v", c.path, errs)
		}
		if _, err := HashPassword("long enough", cfg.Password); !errors.As(err, &ce) || ce.Path != c.path {
			t.Errorf("HashPassword under invalid parameters: %v", err)
		}
	}
}

func TestDummyHashIsVerifiable(t *testing.T) {
	p := cheap.params()
	d := dummyHash(p)
	ok, got, err := verifyPassword(d, "anything at all")
	if ok || err != nil || got != p {
		t.Fatalf("dummy hash: ok=%v params=%+v err=%v", ok, got, err)
	}
	if dummyHash(p) == d {
		t.Error("dummy hashes repeat")
	}
}
