package login

import (
	"fmt"
	"net/http"
	"testing"

	"frontdoor/cmd/wxsim/simulator"
)

// BenchmarkWeChatLogin is one whole WeChat login, in process: the request
// decoded, code2Session over loopback HTTP to the simulator, encryptedData
// decrypted and rawData's signature checked, the user and its first refresh
// token written to a real SQLite file, and the RS256 access token minted.
// Less token's BenchmarkMint, which is the signature and little else, it is
// what a login costs besides signing, without the load generator and
// simulator that bench/run's login step shares the machine with.
func BenchmarkWeChatLogin(b *testing.B) {
	for _, returning := range []bool{false, true} {
		name := "new_user"
		if returning {
			name = "returning_user"
		}
		b.Run(name, func(b *testing.B) {
			fx := newFixture(b)
			sim, srv := newSimulator(b)
			a := fx.newAPI(b, apiSetup{wechatBase: srv.URL})
			const regulars = 100
			openID := func(i int) string {
				if returning {
					i %= regulars
				}
				return fmt.Sprintf("o-bench-%d", i)
			}
			body := func(i int) string {
				return fullBody(b, issue(b, sim, simulator.CodeRequest{OpenID: openID(i), NickName: fmt.Sprint("bench user ", i)}))
			}
			if returning {
				for i := range regulars {
					if w := a.login(body(i)); w.Code != http.StatusOK {
						b.Fatalf("first login: %d %s", w.Code, w.Body)
					}
				}
			}
			// Codes are single-use: one per login, issued before the clock runs.
			bodies := make([]string, b.N)
			for i := range bodies {
				bodies[i] = body(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if w := a.login(bodies[i]); w.Code != http.StatusOK {
					b.Fatalf("login %d: %d %s", i, w.Code, w.Body)
				}
			}
		})
	}
}
