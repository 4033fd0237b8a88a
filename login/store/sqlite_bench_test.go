package store_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"frontdoor/login/store"
)

// BenchmarkSQLiteStartWeChatSession is the store's share of a WeChat login
// on a real SQLite file: the user found or created and its first refresh
// token inserted, in one committed transaction.
func BenchmarkSQLiteStartWeChatSession(b *testing.B) {
	for _, returning := range []bool{false, true} {
		name := "new_user"
		if returning {
			name = "returning_user"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			nick, avatar, gender := "bench user", "https://example.com/a.png", 1
			profile := &store.Profile{Nickname: &nick, AvatarURL: &avatar, Gender: &gender}
			session := func(i int) error {
				var secret [32]byte
				rand.Read(secret[:])
				hash := sha256.Sum256(secret[:])
				family := rand.Text()
				openID := fmt.Sprintf("o-bench-%d", i)
				if returning {
					openID = fmt.Sprintf("o-bench-%d", i%1000)
				}
				// A request's context, as the login handler passes: one that
				// can be cancelled, which the driver watches per statement.
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				_, _, err := s.StartWeChatSession(ctx, store.WeChatLogin{
					AppID: "wx0123456789abcdef", OpenID: openID, SessionKey: secret[:16],
					DefaultRoles: []string{"subscriber"},
					Profile:      profile,
					Now:          now,
				}, store.RefreshToken{Hash: hash[:], FamilyID: family, IssuedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)})
				return err
			}
			if returning {
				for i := range 1000 {
					if err := session(i); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ResetTimer()
			i := 0
			for b.Loop() {
				if err := session(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
