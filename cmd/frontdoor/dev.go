package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"frontdoor/cmd/wxsim/simulator"
	"frontdoor/proxy"
)

const (
	devAppID  = simulator.DefaultAppID
	devSecret = "frontdoor-dev-secret"
)

// devConfig is the config `frontdoor dev` runs: the shipped example's
// policy, pointed at the in-process echo upstream and WeChat simulator, on a
// temporary SQLite file.
const devConfig = `server:
  listen: "{{.Listen}}"
  admin_listen: "{{.AdminListen}}"
  shutdown_grace: 2s
store:
  driver: sqlite
  dsn: "{{.DB}}"
tokens:
  issuer: "http://{{.Listen}}"
  audience: "miniprogram"
  access_ttl: 2h
login:
  default_roles: [subscriber]
  wechat:
    appid: "{{.AppID}}"
    secret: "{{.Secret}}"
    api_base: "{{.WeChat}}"
    timeout: 5s
  password:
    enabled: true
roles:
  subscriber:    { capabilities: [read] }
  contributor:   { inherits: [subscriber], capabilities: [edit_posts] }
  author:        { inherits: [contributor], capabilities: [publish_posts, upload_files] }
  editor:        { inherits: [author], capabilities: [edit_others_posts, moderate_comments] }
  administrator: { inherits: [editor], capabilities: [edit_users, manage_options] }
upstreams:
  echo:
    urls: ["{{.Echo}}"]
routes:
  - name: articles-read
    path: /api/articles/**
    methods: [GET]
    upstream: echo
    auth: optional
  - name: articles-write
    path: /api/articles/**
    methods: [POST, PUT, PATCH, DELETE]
    upstream: echo
    capabilities: [publish_posts]
  - name: profile
    path: /api/profile
    upstream: echo
  - name: admin
    path: /api/admin/**
    upstream: echo
    roles: [administrator]
    strip_prefix: /api
`

const devWalkthrough = `
frontdoor dev is running.
  API          http://{{.Listen}}
  admin        http://{{.AdminListen}}/metrics  /healthz  /readyz
  WeChat sim   {{.WeChat}}   (appid {{.AppID}})
  echo         {{.Echo}}   (answers with what it received)
  database     {{.DB}}   (temporary, deleted on exit)

Try it (copy-paste):

  # 1. The mini-program calls wx.login(); here the simulator hands out a code:
  curl -s -X POST {{.WeChat}}/sim/code -d '{"openid":"o-demo-user","nickname":"Demo"}'

  # 2. Log in with that code (add the encryptedData/iv/rawData/signature it returned to
  #    also check the profile data):
  CODE=$(curl -s -X POST {{.WeChat}}/sim/code -d '{"openid":"o-demo-user"}' | sed 's/.*"code":"\([^"]*\)".*/\1/')
  TOKEN=$(curl -s -X POST http://{{.Listen}}/auth/wx/login -H 'Content-Type: application/json' \
            -d "{\"code\":\"$CODE\"}" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')

  # 3. Call a protected route: the echo upstream shows X-User-Id and X-User-Roles from the token.
  curl -s http://{{.Listen}}/api/profile -H "Authorization: Bearer $TOKEN"

  # 4. A client cannot forge them: the spoofed header is stripped.
  curl -s http://{{.Listen}}/api/profile -H "Authorization: Bearer $TOKEN" -H 'X-User-Id: 1'

  # 5. Subscribers may read but not publish (403 insufficient_scope):
  curl -s -X POST http://{{.Listen}}/api/articles/1 -H "Authorization: Bearer $TOKEN"

  # 6. Who am I?
  curl -s http://{{.Listen}}/auth/me -H "Authorization: Bearer $TOKEN"

Press Ctrl-C to stop.
`

type devParams struct {
	Listen, AdminListen, DB, Echo, WeChat, AppID, Secret string
}

// cmdDev runs frontdoor with everything it needs in-process, so a newcomer can
// try the whole flow with one command and no WeChat account.
func cmdDev(ctx context.Context, e env, args []string) error {
	fs, _ := newFlags(e, "dev")
	listen := fs.String("listen", "127.0.0.1:8080", "address of the API")
	adminListen := fs.String("admin-listen", "127.0.0.1:9090", "address of the admin listener")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "frontdoor-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	echoAddr, stopEcho, err := startLoopback(http.HandlerFunc(echoHandler))
	if err != nil {
		return err
	}
	defer stopEcho()
	sim := simulator.New(simulator.Options{Apps: map[string]string{devAppID: devSecret}})
	simAddr, stopSim, err := startLoopback(sim)
	if err != nil {
		return err
	}
	defer stopSim()

	p := devParams{
		Listen: *listen, AdminListen: *adminListen, DB: filepath.Join(dir, "frontdoor.db"),
		Echo: "http://" + echoAddr, WeChat: "http://" + simAddr, AppID: devAppID, Secret: devSecret,
	}
	var cfgText strings.Builder
	if err := template.Must(template.New("cfg").Parse(devConfig)).Execute(&cfgText, p); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText.String()), 0o600); err != nil {
		return err
	}
	transport := proxy.NewTransport()
	cfg, err := loadConfig(cfgPath, transport)
	if err != nil {
		return fmt.Errorf("dev config: %w", err)
	}
	l := newLogs(e.stderr)
	defer l.close()
	return serve(ctx, e, cfg, transport, l, func(mainAddr, adminAddr string) {
		p.Listen, p.AdminListen = mainAddr, adminAddr
		_ = template.Must(template.New("walk").Parse(devWalkthrough)).Execute(e.stdout, p)
	})
}

// startLoopback serves h on a free loopback port.
func startLoopback(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// echoHandler answers with the method, path, query and headers it received:
// the dev upstream that shows what a legacy service would see.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	headers := map[string]string{}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		headers[k] = strings.Join(r.Header[k], ", ")
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{
		"method":  r.Method,
		"path":    r.URL.Path,
		"query":   r.URL.RawQuery,
		"headers": headers,
	})
}
