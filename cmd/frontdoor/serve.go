package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"frontdoor/internal/h1"
	"frontdoor/internal/logsink"
	"frontdoor/login"
	"frontdoor/login/session"
	"frontdoor/login/store"
	"frontdoor/login/token"
	"frontdoor/login/wechat"
	"frontdoor/proxy"
)

func cmdServe(ctx context.Context, e env, args []string) error {
	fs, cfgPath := newFlags(e, "serve")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "frontdoor serve: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	transport := proxy.NewTransport()
	cfg, err := loadConfig(*cfgPath, transport)
	if err != nil {
		return err
	}
	l := newLogs(e.stderr)
	defer l.close()
	return serve(ctx, e, cfg, transport, l, nil)
}

// logs are frontdoor's log outputs: the JSON logger, and the writer
// under it, which the proxy's access log writes to directly (in the
// logger's format, for a fraction of its cost).
type logs struct {
	logger *zap.Logger
	sink   io.Writer
	close  func()
}

// newLogs returns the logs over w. Lines go through a logsink.Writer,
// which batches them under load instead of making a write system call per
// request; close writes out what it still holds. proxy's
// TestAccessLogMatchesZap holds its access-log lines to this encoder
// configuration: change both together.
func newLogs(w io.Writer) logs {
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	// Lines wait up to 2 ms to share a write: at thousands of requests a
	// second that cut proxy CPU per request by about a tenth (fewer
	// wakeups and system calls), and no reader notices 2 ms.
	sink := logsink.New(w, 0, 2*time.Millisecond)
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), sink, zap.InfoLevel)
	return logs{logger: zap.New(core), sink: sink, close: func() { _ = sink.Close() }}
}

// server is a running frontdoor: its parts and their shared state.
type server struct {
	cfg       atomic.Pointer[config]
	transport *proxy.Transport
	store     store.Store
	keys      *token.KeyRing
	issuer    *token.Issuer
	verifier  *session.Verifier
	trusted   *token.TrustedIssuers
	// reloadGen counts reloads; the verified-token cache forgets what it
	// holds when it changes.
	reloadGen *atomic.Uint64
	revoked   *session.Revocations
	proxy     *proxy.Handler
	api       *login.API
	log       *zap.Logger
	registry  *prometheus.Registry

	ready   atomic.Bool
	storeUp atomic.Bool

	storeUpGauge prometheus.Gauge
	reloads      *prometheus.CounterVec
	configInfo   *prometheus.GaugeVec
	configLoaded prometheus.Gauge

	// reloadMu serialises reloads: SIGHUP and the file watcher may ask at
	// the same moment, and each reload's swaps must not interleave.
	reloadMu sync.Mutex
}

func registerCacheMetrics(reg prometheus.Registerer, c *token.Cache) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "frontdoor_token_cache_hits_total",
			Help: "Access tokens authenticated from the verified-token cache, skipping signature verification.",
		}, func() float64 { return float64(c.Stats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "frontdoor_token_cache_misses_total",
			Help: "Access tokens verified in full because the cache did not hold them.",
		}, func() float64 { return float64(c.Stats().Misses) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "frontdoor_token_cache_entries",
			Help: "Verified tokens held in the cache (at most tokens.cache_size).",
		}, func() float64 { return float64(c.Stats().Entries) }),
	)
}

// listening is called with the bound addresses once the listeners are open
// (frontdoor dev prints its walkthrough then).
type listeningFunc func(mainAddr, adminAddr string)

func serve(ctx context.Context, e env, cfg *config, transport *proxy.Transport, l logs, onListen listeningFunc) error {
	logger := l.logger
	sealer, err := login.NewSealer(e.getenv("FRONTDOOR_SECRET_KEY"))
	if err != nil {
		return err
	}
	if !sealer.Encrypting() {
		logger.Warn("FRONTDOOR_SECRET_KEY is not set: WeChat session keys are stored unencrypted")
	}
	st, err := store.Open(ctx, cfg.file.Store)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()

	keys, err := token.NewKeyRing(ctx, st, cfg.file.Tokens, time.Now)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	tokenVerifier, err := token.NewVerifier(keys, cfg.file.Tokens, time.Now)
	if err != nil {
		return fmt.Errorf("token verifier: %w", err)
	}
	// Revocations (logouts, disabled users, role changes) are checked from
	// memory on every request and synced from the store every 2 s, so a
	// change made by the CLI or another replica applies within seconds and
	// proxying never waits for the database.
	revocations := session.NewRevocations(cfg.file.Tokens.Issuer)
	if err := revocations.Sync(ctx, st, time.Now()); err != nil {
		return fmt.Errorf("load revocations: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Tokens of trusted external issuers are accepted by the proxy only:
	// their subjects are not our user ids, so /auth/ (which acts on our
	// users) verifies our own tokens alone.
	var reloadGeneration atomic.Uint64
	trusted := token.NewTrustedIssuers(token.TrustedOptions{
		OnRefreshError: func(issuer string, err error) {
			logger.Warn("trusted issuer JWKS refresh failed", zap.String("issuer", issuer), zap.Error(err))
		},
	})
	defer trusted.Close()
	if err := trusted.Set(ctx, cfg.file.TrustedIssuers); err != nil {
		return fmt.Errorf("trusted issuers: %w", err)
	}
	// The cache sits under the revocation check: it remembers only that a
	// token's signature and claims verified, which cannot change before its
	// exp, while revocation and the policy are applied on every request.
	var verified session.TokenVerifier = token.NewMultiVerifier(tokenVerifier, cfg.file.Tokens.Issuer, trusted)
	if n := cfg.file.Tokens.CacheSize; n > 0 {
		// A new signing key set or a reload (which may withdraw a trusted
		// issuer) starts a new generation: no cached token outlives the
		// trust that admitted it.
		cache := token.NewCache(verified, token.CacheOptions{Size: n, Generation: func() uint64 {
			return keys.Version() + reloadGeneration.Load()
		}})
		registerCacheMetrics(reg, cache)
		verified = cache
	}
	verifier := session.NewVerifier(verified, revocations)
	ownVerifier := session.NewVerifier(tokenVerifier, revocations)
	s := &server{
		transport: transport,
		store:     st,
		keys:      keys,
		issuer:    token.NewIssuer(keys, cfg.file.Tokens, time.Now),
		verifier:  verifier,
		trusted:   trusted,
		reloadGen: &reloadGeneration,
		revoked:   revocations,
		log:       logger,
		registry:  reg,
		storeUpGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "frontdoor_store_up", Help: "1 when the last store health check succeeded.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "frontdoor_config_reloads_total", Help: "Config reloads by result (ok, error).",
		}, []string{"result"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "frontdoor_config_info", Help: "Always 1; the hash label identifies the config file content in force.",
		}, []string{"hash"}),
		configLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "frontdoor_config_loaded_timestamp_seconds", Help: "Unix time at which the config in force was loaded.",
		}),
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "frontdoor_signing_keys_published",
			Help: "Signing keys in the JWKS: the active one plus retired ones whose tokens may still be live.",
		}, func() float64 {
			n := 0
			for _, k := range keys.Keys() {
				if k.State != token.KeyExpired {
					n++
				}
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "frontdoor_revoked_tokens",
			Help: "Logged-out access tokens held in memory until they expire.",
		}, func() float64 { n, _ := revocations.Size(); return float64(n) }),
	)
	reg.MustRegister(s.storeUpGauge, s.reloads, s.configInfo, s.configLoaded)
	s.setConfig(cfg)

	loginMetrics := login.NewMetrics(reg)
	var wx *wechat.Client
	if cfg.file.Login.WeChat.Enabled() {
		wx = wechat.NewClient(cfg.file.Login.WeChat, nil, loginMetrics)
	}
	s.api = login.NewAPI(login.APIOptions{
		Store:       st,
		Keys:        keys,
		Issuer:      s.issuer,
		Verifier:    ownVerifier,
		Revocations: revocations,
		WeChat:      wx,
		Sealer:      sealer,
		ClientIP:    cfg.clientIP,
		Metrics:     loginMetrics,
		Logger:      logger,
		Now:         time.Now,
		Tokens:      cfg.file.Tokens,
		Config:      cfg.file.Login,
		Policy:      cfg.policy,
	})
	s.proxy, err = proxy.New(proxy.Options{
		Runtime:   cfg.runtime,
		Verifier:  verifier,
		Local:     s.api,
		ClientIP:  cfg.clientIP,
		Logger:    logger,
		AccessLog: l.sink,
		Metrics:   proxy.NewMetrics(reg),
	})
	if err != nil {
		return err
	}

	srvCfg := cfg.file.Server
	mainLn, err := net.Listen("tcp", srvCfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", srvCfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", srvCfg.AdminListen)
	if err != nil {
		mainLn.Close()
		return fmt.Errorf("listen %s: %w", srvCfg.AdminListen, err)
	}
	errLog := zap.NewStdLog(logger.With(zap.String("component", "http")))
	// The main listener's ordinary requests are parsed by h1; it hands any
	// connection whose next request is out of the ordinary to net/http.
	mainSrv := &h1.Server{
		Handler:           s.proxy,
		ReadHeaderTimeout: srvCfg.ReadHeaderTimeout,
		IdleTimeout:       srvCfg.IdleTimeout,
		MaxHeaderBytes:    srvCfg.MaxHeaderBytes,
		ErrorLog:          errLog,
		Fallback: &http.Server{
			Handler:           s.proxy,
			ReadHeaderTimeout: srvCfg.ReadHeaderTimeout,
			IdleTimeout:       srvCfg.IdleTimeout,
			MaxHeaderBytes:    srvCfg.MaxHeaderBytes,
			ErrorLog:          errLog,
		},
	}
	adminSrv := &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       srvCfg.IdleTimeout,
		ErrorLog:          errLog,
	}

	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	go s.watchStore(bg)
	go s.refreshKeys(bg)
	go revocations.Run(bg, st, 2*time.Second, time.Now, func(err error) {
		logger.Warn("sync revocations", zap.Error(err))
	})
	go s.collectGarbage(bg)
	go s.watchSIGHUP(bg)
	go s.watchConfig(bg)

	serveErr := make(chan error, 2)
	go func() { serveErr <- mainSrv.Serve(mainLn) }()
	go func() { serveErr <- adminSrv.Serve(adminLn) }()
	s.ready.Store(true)
	logger.Info("listening",
		zap.String("addr", mainLn.Addr().String()),
		zap.String("admin_addr", adminLn.Addr().String()),
		zap.String("config", cfg.path),
		zap.String("config_hash", cfg.hash),
		zap.String("version", version))
	if onListen != nil {
		onListen(mainLn.Addr().String(), adminLn.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down", zap.Duration("grace", srvCfg.ShutdownGrace))
	case err := <-serveErr:
		runErr = fmt.Errorf("server stopped: %w", err)
	}
	// Stop advertising readiness first so load balancers drain us, then let
	// in-flight requests finish within the grace period.
	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), srvCfg.ShutdownGrace)
	defer cancel()
	if err := mainSrv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("grace period over, closing remaining connections", zap.Error(err))
		mainSrv.Close()
	}
	_ = adminSrv.Shutdown(shutdownCtx)
	transport.CloseIdleConnections()
	logger.Info("stopped")
	return runErr
}

func (s *server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{Registry: s.registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		cfg := s.cfg.Load()
		kid, _ := s.keys.Active()
		storeState := "up"
		if !s.storeUp.Load() {
			storeState = "down"
		}
		// The store is reported, not required: proxying valid tokens does
		// not touch it, so a database outage must not drain the replica.
		ready := s.ready.Load() && cfg != nil && kid != ""
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"ready":       ready,
			"config_hash": cfg.hash,
			"signing_key": kid,
			"store":       storeState,
		})
	})
	return mux
}

// watchStore pings the store every few seconds for /readyz and
// frontdoor_store_up.
func (s *server) watchStore(ctx context.Context) {
	check := func() {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := s.store.Ping(pctx)
		cancel()
		up := err == nil
		if was := s.storeUp.Swap(up); was != up && ctx.Err() == nil {
			if up {
				s.log.Info("store is up")
			} else {
				s.log.Warn("store is down", zap.Error(err))
			}
		}
		if up {
			s.storeUpGauge.Set(1)
		} else {
			s.storeUpGauge.Set(0)
		}
	}
	s.storeUp.Store(true)
	check()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			check()
		}
	}
}

// refreshKeys re-reads the signing keys so that a key imported or rotated by
// another process (the CLI, another replica) is used within seconds; it also
// rotates the key when it is older than tokens.rotate_every and deletes keys
// whose tokens have all expired.
func (s *server) refreshKeys(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			before, _ := s.keys.Active()
			if err := s.keys.Maintain(ctx); err != nil {
				if ctx.Err() == nil {
					s.log.Warn("refresh signing keys", zap.Error(err))
				}
				continue
			}
			if after, _ := s.keys.Active(); after != before {
				s.log.Info("signing key changed", zap.String("kid", after))
			}
		}
	}
}

func (s *server) watchSIGHUP(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			s.reload("SIGHUP")
		}
	}
}

// reload parses and validates the whole file, then swaps it in atomically.
// An invalid file leaves the running config untouched.
func (s *server) reload(trigger string) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cfg.Load()
	next, err := loadConfig(old.path, s.transport)
	if err != nil {
		s.reloads.WithLabelValues("error").Inc()
		s.log.Error("config reload refused; the running config stays in place",
			zap.String("trigger", trigger), zap.Error(err))
		return
	}
	if next.hash == old.hash {
		return
	}
	for _, section := range restartSections(old.file, next.file) {
		s.log.Warn("config section changed but needs a restart to apply", zap.String("section", section))
	}
	// Sections that need a restart keep their running values.
	next.file.Server, next.file.Store, next.file.Tokens = old.file.Server, old.file.Store, old.file.Tokens
	next.file.Login.WeChat = old.file.Login.WeChat
	next.clientIP = old.clientIP
	if err := s.trusted.Set(context.Background(), next.file.TrustedIssuers); err != nil {
		// Validation accepted the list, so this is a bug; keep everything old.
		s.reloads.WithLabelValues("error").Inc()
		s.log.Error("config reload refused: trusted issuers", zap.String("trigger", trigger), zap.Error(err))
		return
	}
	s.reloadGen.Add(1)
	s.proxy.Swap(next.runtime)
	s.api.Reload(next.file.Login, next.policy)
	s.setConfig(next)
	s.reloads.WithLabelValues("ok").Inc()
	s.log.Info("config reloaded", zap.String("trigger", trigger), zap.String("config_hash", next.hash))
}

// setConfig makes c the config in force and publishes its identity.
func (s *server) setConfig(c *config) {
	s.cfg.Store(c)
	s.configInfo.Reset()
	s.configInfo.WithLabelValues(c.hash).Set(1)
	s.configLoaded.SetToCurrentTime()
}

func restartSections(a, b fileConfig) []string {
	var out []string
	if !equalJSON(a.Server, b.Server) {
		out = append(out, "server")
	}
	if !equalJSON(a.Store, b.Store) {
		out = append(out, "store")
	}
	if !equalJSON(a.Tokens, b.Tokens) {
		out = append(out, "tokens")
	}
	if !equalJSON(a.Login.WeChat, b.Login.WeChat) {
		out = append(out, "login.wechat")
	}
	return out
}

func equalJSON(a, b any) bool {
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

// collectGarbage deletes expired refresh tokens and denied jtis. Retired
// signing keys are collected by the key ring's Maintain.
func (s *server) collectGarbage(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			refresh, jtis, err := s.store.DeleteExpired(ctx, time.Now())
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("delete expired sessions", zap.Error(err))
				}
				continue
			}
			if refresh+jtis > 0 {
				s.log.Info("deleted expired sessions", zap.Int("refresh_tokens", refresh), zap.Int("denied_jtis", jtis))
			}
		}
	}
}
