package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The reload tests alternate between two valid policies that answer some
// requests differently:
//
//	policy A (e2eConfig): /api/admin/** needs the administrator role; there
//	is no /api/extra route.
//	policy B: /api/admin/** needs editor (so administrators still pass), and
//	a public GET /api/extra route exists.
const (
	adminRoleA = "    roles: [administrator]\n    strip_prefix: /api\n"
	adminRoleB = "    roles: [editor]\n    strip_prefix: /api\n"
	extraRoute = `  - name: extra
    path: /api/extra
    methods: [GET]
    upstream: legacy
    auth: none
`
)

// reloadPolicies returns the text of policies A and B for a store at dsn
// and an upstream at upstreamURL.
func reloadPolicies(t *testing.T, dsn, upstreamURL string) (a, b string) {
	t.Helper()
	a = fmt.Sprintf(e2eConfig, dsn, upstreamURL)
	if !strings.Contains(a, adminRoleA) || !strings.Contains(a, "tests:\n") {
		t.Fatal("e2eConfig changed shape; update the reload tests")
	}
	b = strings.Replace(a, adminRoleA, adminRoleB, 1)
	b = strings.Replace(b, "tests:\n", extraRoute+"tests:\n", 1)
	return a, b
}

// invalidVariants are files that must be refused, each for a different
// reason, all derived from policy A.
func invalidVariants(a string) []string {
	return []string{
		// YAML syntax.
		a + "routes: [unclosed\n",
		// An unknown key.
		strings.Replace(a, "    strip_prefix: /api\n", "    strip_prefx: /api\n", 1),
		// A policy test that the policy fails.
		a + "  - name: editors reach admin\n    method: GET\n    path: /api/admin/users\n    roles: [editor]\n    expect: allow\n",
		// auth none together with roles.
		strings.Replace(a, adminRoleA, "    auth: none\n"+adminRoleA, 1),
		// A route naming an upstream that does not exist.
		strings.Replace(a, "    upstream: legacy\n    roles: [administrator]", "    upstream: nowhere\n    roles: [administrator]", 1),
	}
}

// quietUpstream answers every request without remembering it, so that a
// long run under load does not pile up recorded requests.
func quietUpstream(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "legacy saw %s %s", r.Method, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// metricsOf fetches the admin listener's metrics as "name{labels}" → value.
func metricsOf(t *testing.T, admin string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

const (
	reloadsOK    = `frontdoor_config_reloads_total{result="ok"}`
	reloadsError = `frontdoor_config_reloads_total{result="error"}`
)

func configInfo(hash string) string { return `frontdoor_config_info{hash="` + hash + `"}` }

// waitMetrics polls the metrics until cond holds for them.
func waitMetrics(t *testing.T, admin, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := metricsOf(t, admin)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; reloads ok=%v error=%v", what, m[reloadsOK], m[reloadsError])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitApplied waits until the config with content text is in force.
func waitApplied(t *testing.T, admin, text string) map[string]float64 {
	t.Helper()
	h := configHash([]byte(text))
	return waitMetrics(t, admin, "config "+h, func(m map[string]float64) bool { return m[configInfo(h)] == 1 })
}

// replaceFile writes data next to path and renames it over path, as most
// editors and config-management tools do.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// reloadCase is a request whose answer the two policies may differ on.
type reloadCase struct {
	name         string
	method, path string
	tok          string
	underA       int
	underB       int
}

func TestEndToEndReloadUnderLoad(t *testing.T) {
	up := quietUpstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	polA, polB := reloadPolicies(t, filepath.Join(dir, "fd.db"), up.URL)
	if err := os.WriteFile(cfgPath, []byte(polA), 0o600); err != nil {
		t.Fatal(err)
	}
	fd := startFrontdoor(t, cfgPath)
	base := "http://" + fd.addr
	waitApplied(t, fd.admin, polA)

	editor := mint(t, cfgPath, "5", "editor")
	author := mint(t, cfgPath, "42", "author")
	reader := mint(t, cfgPath, "7", "subscriber")
	cases := []reloadCase{
		{"editor reaches admin", "GET", "/api/admin/users", editor, 403, 200},
		{"anonymous extra", "GET", "/api/extra", "", 404, 200},
		{"author publishes", "POST", "/api/articles/1", author, 200, 200},
		{"reader cannot publish", "POST", "/api/articles/1", reader, 403, 403},
		{"anonymous reads", "GET", "/api/articles/1", "", 200, 200},
		{"anonymous cannot publish", "POST", "/api/articles/1", "", 401, 401},
	}

	// Workers send requests until the rewrites are over; every answer must
	// be one that policy A or policy B gives.
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		total    atomic.Int64
		mu       sync.Mutex
		failures []string
		seen     = make([]map[int]int, len(cases))
	)
	for i := range seen {
		seen[i] = map[int]int{}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	defer client.CloseIdleConnections()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := w; !stop.Load(); n++ {
				k := n % len(cases)
				c := cases[k]
				req, _ := http.NewRequest(c.method, base+c.path, nil)
				if c.tok != "" {
					req.Header.Set("Authorization", "Bearer "+c.tok)
				}
				resp, err := client.Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				total.Add(1)
				mu.Lock()
				seen[k][status]++
				if status != c.underA && status != c.underB {
					failures = append(failures, fmt.Sprintf("%s: status %d err %v", c.name, status, err))
				}
				mu.Unlock()
				// A breath between requests keeps the shared CPUs usable
				// for the reloads under test.
				time.Sleep(time.Millisecond)
			}
		}(w)
	}

	// 50 rewrites: valid ones alternate between B and A, every seventh is
	// refused. Each is waited for, so every one of them is exercised.
	invalid := invalidVariants(polA)
	current, wantOK, wantErr, nInvalid, nSyntax := polA, 0, 0, 0, 0
	for i := 0; i < 50; i++ {
		var text string
		if i%7 == 3 {
			if nInvalid%len(invalid) == 0 {
				nSyntax++
			}
			text = invalid[nInvalid%len(invalid)]
			nInvalid++
		} else if current == polA {
			text = polB
		} else {
			text = polA
		}
		// Both ways of writing a file: in place (truncate, then write) and
		// by renaming a complete new file over it.
		if i%2 == 0 {
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		} else {
			replaceFile(t, cfgPath, text)
		}
		if i%7 == 3 {
			wantErr++
			m := waitMetrics(t, fd.admin, fmt.Sprintf("reload error %d", wantErr), func(m map[string]float64) bool {
				return m[reloadsError] == float64(wantErr)
			})
			if m[configInfo(configHash([]byte(current)))] != 1 {
				t.Fatalf("write %d: an invalid file displaced the running config", i)
			}
			continue
		}
		wantOK++
		current = text
		waitApplied(t, fd.admin, current)
	}
	stop.Store(true)
	wg.Wait()

	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during reloads; first ones: %q", len(failures), total.Load(), failures[:min(len(failures), 10)])
	}
	for k, c := range cases {
		if c.underA != c.underB && (seen[k][c.underA] == 0 || seen[k][c.underB] == 0) {
			t.Errorf("%s: answers %v; both policies should have been seen in force", c.name, seen[k])
		}
	}
	m := metricsOf(t, fd.admin)
	if m[reloadsOK] != float64(wantOK) || m[reloadsError] != float64(wantErr) {
		t.Errorf("reloads ok=%v error=%v, want %d and %d", m[reloadsOK], m[reloadsError], wantOK, wantErr)
	}
	if current != polB {
		t.Fatal("the last write should have been policy B")
	}
	// The final policy is B, and it is what requests get.
	if resp, body := do(t, "GET", base+"/api/admin/users", editor, nil); resp.StatusCode != 200 {
		t.Errorf("editor under the final policy: %d %s", resp.StatusCode, body)
	}
	if resp, body := do(t, "GET", base+"/api/extra", "", nil); resp.StatusCode != 200 {
		t.Errorf("extra under the final policy: %d %s", resp.StatusCode, body)
	}
	if _, body := do(t, "GET", "http://"+fd.admin+"/readyz", "", nil); !strings.Contains(body, `"config_hash":"`+configHash([]byte(polB))+`"`) {
		t.Errorf("readyz does not show the final config: %s", body)
	}
	if m["frontdoor_config_loaded_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("frontdoor_config_loaded_timestamp_seconds = %v", m["frontdoor_config_loaded_timestamp_seconds"])
	}

	// Every refusal was logged naming the file, line and column; YAML
	// syntax errors (variant 0) know only the line.
	located := regexp.MustCompile(regexp.QuoteMeta(cfgPath) + `:\d+(:\d+)?: `)
	withColumn := regexp.MustCompile(regexp.QuoteMeta(cfgPath) + `:\d+:\d+: `)
	refusals, columns := 0, 0
	for _, line := range strings.Split(fd.settledLogs(t), "\n") {
		if strings.Contains(line, `"msg":"config reload refused`) {
			refusals++
			if !located.MatchString(line) {
				t.Errorf("refusal without file:line: %s", line)
			}
			if withColumn.MatchString(line) {
				columns++
			}
		}
	}
	if refusals != wantErr || columns != wantErr-nSyntax {
		t.Errorf("%d refusals logged (%d with a column), want %d (%d)", refusals, columns, wantErr, wantErr-nSyntax)
	}
	t.Logf("%d requests during %d rewrites", total.Load(), 50)
}

func TestEndToEndReloadEditorReplace(t *testing.T) {
	up := quietUpstream(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	polA, polB := reloadPolicies(t, filepath.Join(dir, "fd.db"), up.URL)
	if err := os.WriteFile(cfgPath, []byte(polA), 0o600); err != nil {
		t.Fatal(err)
	}
	fd := startFrontdoor(t, cfgPath)
	waitApplied(t, fd.admin, polA)
	editor := mint(t, cfgPath, "5", "editor")
	adminStatus := func() int {
		resp, _ := do(t, "GET", "http://"+fd.addr+"/api/admin/users", editor, nil)
		return resp.StatusCode
	}

	steps := []struct {
		name  string
		write func(text string)
		text  string
		want  int // the editor's status on /api/admin/users afterwards
	}{
		{"write a temporary file and rename it over", func(text string) { replaceFile(t, cfgPath, text) }, polB, 200},
		{"move the old file away and create a new one (vim)", func(text string) {
			if err := os.Rename(cfgPath, cfgPath+"~"); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Remove(cfgPath + "~")
		}, polA, 403},
		{"delete and recreate", func(text string) {
			if err := os.Remove(cfgPath); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
		}, polB, 200},
	}
	for _, s := range steps {
		s.write(s.text)
		waitApplied(t, fd.admin, s.text)
		if got := adminStatus(); got != s.want {
			t.Errorf("%s: editor gets %d, want %d", s.name, got, s.want)
		}
	}
	// Replacing the file with the same content, or touching it, is not a
	// reload; the change after it is exactly one.
	replaceFile(t, cfgPath, polB)
	now := time.Now()
	if err := os.Chtimes(cfgPath, now, now); err != nil {
		t.Fatal(err)
	}
	replaceFile(t, cfgPath, polA)
	m := waitApplied(t, fd.admin, polA)
	if m[reloadsOK] != 4 || m[reloadsError] != 0 {
		t.Errorf("reloads ok=%v error=%v, want 4 and 0", m[reloadsOK], m[reloadsError])
	}
	if got := adminStatus(); got != 403 {
		t.Errorf("after the last replace the editor gets %d, want 403", got)
	}
}

// kubeSwap publishes files the way the kubelet updates a ConfigMap volume:
// a new timestamped directory, a new ..data symlink renamed over the old
// one, then the old directory removed.
type kubeSwap struct {
	t   *testing.T
	dir string
	n   int
	cur string
}

func (k *kubeSwap) publish(files map[string]string) {
	k.t.Helper()
	k.n++
	ts := fmt.Sprintf("..2026_01_02_15_04_%02d.%09d", k.n, k.n)
	if err := os.Mkdir(filepath.Join(k.dir, ts), 0o755); err != nil {
		k.t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(k.dir, ts, name), []byte(text), 0o644); err != nil {
			k.t.Fatal(err)
		}
	}
	tmp := filepath.Join(k.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(k.dir, kubeDataLink)); err != nil {
		k.t.Fatal(err)
	}
	if k.cur != "" {
		if err := os.RemoveAll(filepath.Join(k.dir, k.cur)); err != nil {
			k.t.Fatal(err)
		}
	}
	k.cur = ts
	// The user-visible names link through ..data and are created once.
	for name := range files {
		link := filepath.Join(k.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join(kubeDataLink, name), link); err != nil {
				k.t.Fatal(err)
			}
		}
	}
}

func TestEndToEndReloadConfigMapSymlinkSwap(t *testing.T) {
	up := quietUpstream(t)
	dir := t.TempDir()
	mount := filepath.Join(dir, "config")
	if err := os.Mkdir(mount, 0o755); err != nil {
		t.Fatal(err)
	}
	polA, polB := reloadPolicies(t, filepath.Join(dir, "fd.db"), up.URL)
	k := &kubeSwap{t: t, dir: mount}
	k.publish(map[string]string{"config.yaml": polA, "other.txt": "1"})
	cfgPath := filepath.Join(mount, "config.yaml")
	fd := startFrontdoor(t, cfgPath)
	waitApplied(t, fd.admin, polA)
	editor := mint(t, cfgPath, "5", "editor")

	k.publish(map[string]string{"config.yaml": polB, "other.txt": "1"})
	waitApplied(t, fd.admin, polB)
	if resp, body := do(t, "GET", "http://"+fd.addr+"/api/admin/users", editor, nil); resp.StatusCode != 200 {
		t.Errorf("after the swap to B: %d %s", resp.StatusCode, body)
	}

	// An invalid ConfigMap is refused and B stays.
	k.publish(map[string]string{"config.yaml": invalidVariants(polA)[1], "other.txt": "1"})
	m := waitMetrics(t, fd.admin, "the refusal", func(m map[string]float64) bool { return m[reloadsError] == 1 })
	if m[configInfo(configHash([]byte(polB)))] != 1 {
		t.Error("an invalid ConfigMap displaced the running config")
	}

	k.publish(map[string]string{"config.yaml": polA, "other.txt": "1"})
	waitApplied(t, fd.admin, polA)
	// Another key of the ConfigMap changes: config.yaml's content does not,
	// so nothing is reloaded; the next real change is the only reload.
	k.publish(map[string]string{"config.yaml": polA, "other.txt": "2"})
	k.publish(map[string]string{"config.yaml": polB, "other.txt": "2"})
	m = waitApplied(t, fd.admin, polB)
	if m[reloadsOK] != 3 || m[reloadsError] != 1 {
		t.Errorf("reloads ok=%v error=%v, want 3 and 1", m[reloadsOK], m[reloadsError])
	}
	if resp, body := do(t, "GET", "http://"+fd.addr+"/api/extra", "", nil); resp.StatusCode != 200 {
		t.Errorf("after the last swap: %d %s", resp.StatusCode, body)
	}
}
