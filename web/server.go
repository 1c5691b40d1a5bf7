package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"matrixas/apidoc"
	"matrixas/auth"
	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/handlers"
	"matrixas/matrix"
	"matrixas/metrics"
	"matrixas/provision"
	"matrixas/static"
)

// Server is the wired application: the store, the handlers and the router.
type Server struct {
	cfg      *Config
	log      *slog.Logger
	store    *db.Store
	settings *db.Settings
	handler  *handlers.Handler
	router   http.Handler
	jobs     []func(ctx context.Context) // background loops, started by Start
	metrics  *metrics.Metrics
	wg       sync.WaitGroup
	limits   httpLimits // zero = defaultHTTPLimits (limits.go); tests shorten them
}

// New wires the server by hand from its configuration and an open store.
func New(ctx context.Context, cfg *Config, store *db.Store, log *slog.Logger, version string) (*Server, error) {
	settings := db.NewSettings(store, cfg.FixedSettings())
	log = newRedactingLogger(log, settings)
	key, err := sessionKey(ctx, cfg, settings)
	if err != nil {
		return nil, err
	}
	recorder := store.NewRecorder(256)
	m := metrics.New(version, log)
	m.CollectStore(store)
	diag := diagnostics.New(store, settings, diagnostics.Options{
		ConnectTimeout: cfg.DiagnosticsConnectTimeout,
		RequestTimeout: cfg.DiagnosticsRequestTimeout,
		StaleAfter:     cfg.TransactionsStaleAfter,
		Origin:         cfg.PublicURL,
		WrapTransport:  m.WrapTransport(metrics.CallerDiagnostics),
	})
	worker := provision.New(store, settings, log, provision.Options{
		Concurrency:     cfg.Provision.Concurrency,
		MaxAttempts:     cfg.Provision.MaxAttempts,
		BaseBackoff:     cfg.Provision.Backoff,
		MaxBackoff:      cfg.Provision.MaxBackoff,
		Interval:        cfg.Provision.Interval,
		AutoCreateRooms: cfg.Provision.AutoCreateRooms,
		HTTPClient:      m.InstrumentClient(matrix.HTTPClient(3*time.Second, 10*time.Second), metrics.CallerWorker),
		Observer:        m,
	})
	h := handlers.New(handlers.Deps{
		MatrixHTTP:     m.InstrumentClient(matrix.HTTPClient(3*time.Second, 10*time.Second), metrics.CallerAPI),
		Recorder:       recorder,
		Diag:           diag,
		Store:          store,
		Settings:       settings,
		Sessions:       auth.NewSessionStore(store, key, strings.HasPrefix(cfg.PublicURL, "https://")),
		Throttle:       auth.NewThrottle(5, 15*time.Minute),
		Logins:         auth.NewLoginThrottle(5, 15*time.Minute),
		Passwords:      auth.NewPasswords(cfg.PasswordCost),
		Log:            log,
		PublicURL:      cfg.PublicURL,
		TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		Version:        version,
		StartedAt:      time.Now(),

		// The provisioning worker, woken by every write it should act on.
		Wake:            worker.Wake,
		AutoCreateRooms: cfg.Provision.AutoCreateRooms,

		// Counts transactions and refused homeserver requests for /metrics.
		WebhookMetrics: m,
	})
	s := &Server{cfg: cfg, log: log, store: store, settings: settings, handler: h, metrics: m}
	s.jobs = append(s.jobs, recorder.Run, s.pruneLoop)
	s.jobs = append(s.jobs, worker.Run)
	s.router = Routes(h, s)
	return s, nil
}

// Start runs the background jobs until ctx is cancelled.
func (s *Server) Start(ctx context.Context) {
	for _, job := range s.jobs {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			job(ctx)
		}()
	}
}

// Wait waits for the background jobs to return after their context was cancelled.
func (s *Server) Wait() { s.wg.Wait() }

// Handler is the root HTTP handler.
func (s *Server) Handler() http.Handler { return s.router }

// Settings is the settings store the server uses.
func (s *Server) Settings() *db.Settings { return s.settings }

// sessionKey returns SESSION_KEY, or the key generated on first run and kept in the database.
func sessionKey(ctx context.Context, cfg *Config, settings *db.Settings) ([]byte, error) {
	if cfg.SessionKey != nil {
		return cfg.SessionKey, nil
	}
	k, err := settings.Get(ctx, db.SettingSessionKey)
	if err != nil {
		return nil, err
	}
	if k == "" {
		k = auth.RandomHex(32)
		if err := settings.Set(ctx, map[string]string{db.SettingSessionKey: k}); err != nil {
			return nil, err
		}
	}
	return []byte(k), nil
}

// Routes lists every route of the server in one place.
func Routes(h *handlers.Handler, s *Server) http.Handler {
	r := chi.NewRouter()
	r.Use(s.metrics.HTTPMiddleware) // outside logRequests, so a recovered panic counts as its 500
	r.Use(logRequests(s.log, h.Panic))
	r.Use(securityHeaders)
	// The 404 page knows who is signed in, so it keeps the navigation.
	r.NotFound(authenticate(s.store, h.Sessions)(http.HandlerFunc(h.NotFound)).ServeHTTP)
	r.MethodNotAllowed(h.MethodNotAllowed)

	// Unauthenticated basics.
	r.Get("/healthz", h.Healthz)
	r.Get("/readyz", h.Readyz)
	r.Get("/metrics", s.metricsRoute(h)) // Bearer METRICS_TOKEN; 404 without one
	r.Handle("/static/*", http.StripPrefix("/static", static.Handler()))

	// The homeserver's side: authenticated by hs_token inside the handlers, never by session.
	r.Route("/_matrix/app", func(r chi.Router) {
		r.Use(limitBody(h, s.cfg.WebhookBodyMB<<20))
		r.NotFound(h.NotFound)
		r.MethodNotAllowed(h.MethodNotAllowed)
		r.Put("/v1/transactions/{txnId}", h.Transaction)
		r.Post("/v1/ping", h.Ping)
		r.Get("/v1/users/{userId}", h.QueryNotFound)
		r.Get("/v1/rooms/{roomAlias}", h.QueryNotFound)
	})
	// Legacy (pre-v1) transaction path, still sent by old homeservers: the same handler.
	r.With(limitBody(h, s.cfg.WebhookBodyMB<<20)).Put("/transactions/{txnId}", h.Transaction)

	// Cookie- or token-authenticated: CSRF protection, body limit, the user in the context.
	r.Group(func(r chi.Router) {
		r.Use(crossOrigin(h))
		r.Use(limitBody(h, s.cfg.MaxBodyBytes))
		r.Use(authenticate(s.store, h.Sessions))

		r.Get("/login", h.LoginForm)
		r.Post("/login", h.Login)
		r.Post("/logout", h.Logout)

		// Dashboard pages: staff only.
		r.Group(func(r chi.Router) {
			r.Use(requireStaffPage(h))
			r.Get("/", h.Overview)
			r.Get("/account", h.Account)
			r.Post("/account/password", h.ChangePassword)
			r.Post("/account/tokens", h.CreateToken)
			r.Post("/account/tokens/{id}/revoke", h.RevokeToken)
			r.Post("/account/staff", h.CreateStaff)
			r.Post("/account/staff/{id}/deactivate", h.DeactivateStaff)
			r.Post("/account/staff/{id}/activate", h.ActivateStaff)
			r.Get("/transactions", h.Transactions)
			r.Get("/setup", h.SetupPage)
			r.Post("/setup", h.SetupSubmit)
			r.Post("/setup/provision-bot", h.SetupProvisionBot)
			r.Get("/settings", h.SettingsPage)
			r.Post("/settings", h.SettingsSubmit)
			r.Get("/diagnostics", h.DiagnosticsPage)
			r.Get("/diagnostics/results", h.DiagnosticsResults)
			r.Get("/diagnostics/summary", h.DiagnosticsSummary)
			r.Get("/rooms", h.RoomsPage)
			r.Get("/rooms/{uuid}", h.RoomDetail)
			r.Post("/rooms/{uuid}/retry", h.RoomRetry)
			r.Post("/rooms/{uuid}/disable", h.RoomDisable)
			r.Post("/rooms/{uuid}/reactivate", h.RoomReactivate)
			r.Get("/projects", h.ProjectsPage)
			r.Get("/projects/{uuid}", h.ProjectDetail)
			r.Post("/projects/{uuid}/room", h.ProjectCreateRoom)
			r.Get("/users", h.UsersPage)
			r.Get("/users/{uuid}", h.UserDetail)
			r.Get("/reprovision", h.ReprovisionPage)
			r.Post("/reprovision", h.ReprovisionSubmit)
			r.Get("/reprovision/progress", h.ReprovisionProgressFragment)
		})

		// JSON API.
		r.Route("/api", func(r chi.Router) {
			r.Use(middleware.GetHead) // HEAD answers like GET without the body (net/http drops it)
			r.NotFound(h.NotFound)
			r.MethodNotAllowed(h.MethodNotAllowed)
			r.Get("/schema/", apidoc.Handler()) // the OpenAPI document: public, it holds no secret
			r.Group(func(r chi.Router) {
				r.Use(requireStaff(h))
				r.Get("/admin/matrix-appservice/status/", h.Status)
				r.Post("/admin/matrix-appservice/setup/", h.Setup)
				r.Post("/admin/matrix-appservice/provision-bot/", h.ProvisionBot)
				r.Get("/admin/matrix-appservice/registration.yaml", h.RegistrationFile)
				r.Get("/admin/matrix/diagnostics/", h.Diagnostics)
				r.Get("/admin/matrix/reprovision/", h.APIReprovisionProgress)
				r.Post("/admin/matrix/reprovision/", h.APIReprovision)
			})
			// Platform directory, rooms and profiles: any token reads, staff writes.
			r.Group(func(r chi.Router) {
				r.Use(staffWrites(h))
				r.Get("/users/", h.APIListUsers)
				r.Post("/users/", h.APICreateUser)
				r.Get("/users/{uuid}/", h.APIGetUser)
				r.Put("/users/{uuid}/", h.APIUpdateUser)
				r.Patch("/users/{uuid}/", h.APIUpdateUser)
				r.Post("/users/{uuid}/deactivate/", h.APIDeactivateUser)
				r.Get("/projects/", h.APIListProjects)
				r.Post("/projects/", h.APICreateProject)
				r.Get("/projects/{uuid}/", h.APIGetProject)
				r.Put("/projects/{uuid}/", h.APIUpdateProject)
				r.Patch("/projects/{uuid}/", h.APIUpdateProject)
				r.Delete("/projects/{uuid}/", h.APIDeleteProject)
				r.Get("/projects/{uuid}/members/", h.APIListMembers)
				r.Put("/projects/{uuid}/members/", h.APISetMembers)
				r.Post("/projects/{uuid}/members/", h.APIAddMember)
				r.Delete("/projects/{uuid}/members/{user}/", h.APIRemoveMember)
				r.Get("/matrix-rooms/", h.APIListRooms)
				r.Post("/matrix-rooms/", h.APICreateRoom)
				r.Get("/matrix-rooms/{uuid}/", h.APIGetRoom)
				r.Post("/matrix-rooms/{uuid}/retry/", h.APIRetryRoom)
				r.Post("/matrix-rooms/{uuid}/disable/", h.APIDisableRoom)
				r.Post("/matrix-rooms/{uuid}/reactivate/", h.APIReactivateRoom)
				r.Get("/matrix-user-profiles/", h.APIListProfiles)
			})
		})
	})
	return r
}

// Run serves until ctx is cancelled, then drains in-flight requests for up to 20 s.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.ListenAddr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is cancelled.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	lim := s.httpLimits()
	srv := &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	stopMetrics, err := s.serveMetrics()
	if err != nil {
		return err
	}
	defer stopMetrics()
	// Background jobs (the transaction recorder among them) stop only after the HTTP
	// server has drained, so an in-flight webhook request can still commit.
	jobCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	s.Start(jobCtx)
	defer func() {
		stopJobs()
		s.Wait()
	}()
	s.log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ErrNoActiveStaff is returned by Bootstrap when there is no active staff user and it
// cannot create one: nobody can sign in to the dashboard until someone runs
// "matrixas createstaff". The server serves all the same (the homeserver's transactions
// and the API's tokens do not need the dashboard), so serve logs it and goes on.
var ErrNoActiveStaff = errors.New("no active staff user")

// Bootstrap creates the first staff user when no active one exists, with the password
// from BOOTSTRAP_PASSWORD_FILE (which must pass auth.CheckPasswordPolicy) or a random
// one, which it returns so the caller can show it once. It returns "" when nothing was
// created, and an error wrapping ErrNoActiveStaff when the name is taken by another user.
func Bootstrap(ctx context.Context, cfg *Config, store *db.Store) (username, password string, err error) {
	n, err := store.CountStaff(ctx)
	if err != nil || n > 0 {
		return "", "", err
	}
	noName := func() error {
		return fmt.Errorf("%w, and the name %q (BOOTSTRAP_USERNAME) belongs to another user, so none was created: "+
			"nobody can sign in to the dashboard until you run 'matrixas createstaff NAME' (or set BOOTSTRAP_USERNAME to a free name and restart)",
			ErrNoActiveStaff, cfg.BootstrapUsername)
	}
	switch _, err := store.UserByUsername(ctx, cfg.BootstrapUsername); {
	case err == nil:
		return "", "", noName() // said before a password is read or hashed for nothing
	case !errors.Is(err, db.ErrNotFound):
		return "", "", err
	}
	if cfg.BootstrapPasswordFile != "" {
		b, err := os.ReadFile(cfg.BootstrapPasswordFile)
		if err != nil {
			return "", "", fmt.Errorf("BOOTSTRAP_PASSWORD_FILE: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
		if err := auth.CheckPasswordPolicy(cfg.BootstrapUsername, password); err != nil {
			return "", "", fmt.Errorf("BOOTSTRAP_PASSWORD_FILE: the password for %q is refused: %w", cfg.BootstrapUsername, err)
		}
	} else {
		password = randomPassword(cfg.BootstrapUsername)
	}
	hash, err := auth.NewPasswords(cfg.PasswordCost).Hash(password)
	if err != nil {
		return "", "", fmt.Errorf("first-run staff password: %w", err)
	}
	u := &db.User{Username: cfg.BootstrapUsername, IsStaff: true, IsActive: true, PasswordHash: hash, FullName: "Administrator"}
	if err := store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, db.ErrConflict) { // taken meanwhile
			return "", "", noName()
		}
		return "", "", err
	}
	return u.Username, password, nil
}

// randomPassword is a first-run password: 24 hex digits (96 bits), drawn again in the
// rare case the policy refuses it (all digits, or holding a short username).
func randomPassword(username string) string {
	for {
		if pw := auth.RandomHex(12); auth.CheckPasswordPolicy(username, pw) == nil {
			return pw
		}
	}
}
