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
	"matrixas/bot"
	"matrixas/db"
	"matrixas/diagnostics"
	"matrixas/export"
	"matrixas/exports"
	"matrixas/handlers/api"
	"matrixas/handlers/appservice"
	"matrixas/handlers/health"
	"matrixas/handlers/respond"
	"matrixas/handlers/ui"
	"matrixas/matrix"
	"matrixas/metrics"
	"matrixas/platform"
	"matrixas/provision"
	"matrixas/settings"
	"matrixas/setup"
	"matrixas/static"
	"matrixas/waldur"
)

// Server is the wired application: the store, the handlers and the router.
type Server struct {
	cfg      *Config
	log      *slog.Logger
	store    *db.Store
	settings *db.Settings
	sessions *auth.SessionStore
	router   http.Handler
	jobs     []func(ctx context.Context) // background loops, started by Start
	metrics  *metrics.Metrics
	// webhookErrors counts the 5xx answers to the homeserver (webhook_errors).
	webhookErrors *appservice.ErrorWindow
	platform      platformParts // the platform sync; zero without WALDUR_URL
	wg            sync.WaitGroup
	limits        httpLimits // zero = defaultHTTPLimits (limits.go); tests shorten them

	// The handlers, one per audience; Routes maps paths to their methods.
	appservice *appservice.Handler
	api        *api.Handler
	ui         *ui.Handler
	health     *health.Handler
}

// The server's metrics count what the webhook sees.
var _ appservice.Observer = (*metrics.Metrics)(nil)

// The worker makes accounts ready for the API's credentials and session endpoints.
var _ api.Accounts = (*provision.Worker)(nil)

// New wires the server by hand from its configuration and an open store.
func New(ctx context.Context, cfg *Config, store *db.Store, log *slog.Logger, version string) (*Server, error) {
	settings := db.NewSettings(store, cfg.FixedSettings())
	log = newRedactingLogger(log, settings, cfg.Platform.Token, cfg.Platform.EventsSecret)
	store.SetRoleNotices(bot.RoleNotices{}) // role writes announce themselves in the rooms
	key, err := sessionKey(ctx, cfg, settings)
	if err != nil {
		return nil, err
	}
	recorder := store.NewRecorder(256)
	m := metrics.New(version, log)
	m.CollectStore(store)
	m.CollectOutbox(store)
	webhookErrors := appservice.NewErrorWindow()
	var exportJob *exports.Job // made after the worker, whose Wake it calls
	worker := provision.New(store, settings, log, provision.Options{
		Concurrency:     cfg.Provision.Concurrency,
		MaxAttempts:     cfg.Provision.MaxAttempts,
		BaseBackoff:     cfg.Provision.Backoff,
		MaxBackoff:      cfg.Provision.MaxBackoff,
		Interval:        cfg.Provision.Interval,
		AutoCreateRooms: cfg.Provision.AutoCreateRooms,
		HTTPClient:      m.InstrumentClient(matrix.HTTPClient(3*time.Second, 10*time.Second), metrics.CallerWorker),
		Observer:        m,
		// With history export on, the disable path exports the room before archiving it
		// (MATRIX_HISTORY_EXPORT_ENABLED); the job is woken for it.
		ExportBeforeArchive: cfg.Export.Enabled,
		ExportTimeout:       cfg.Provision.ExportTimeout,
		ExportQueued:        func() { exportJob.Wake() },
		// A disable with delete_history deletes the room's exports, files first.
		RemoveExportFiles: func(uuid string) error { return export.RemoveFiles(exportDir(cfg), uuid) },
	})
	// An export that finishes wakes the worker: a room waiting for it is archived.
	if exportJob, err = newExportJob(cfg, store, settings, log, m, worker.Wake); err != nil {
		return nil, err
	}
	// The platform sync (nil parts without WALDUR_URL). plat.Client is the configured
	// platform client, which the bot reads live too (!status, !orders).
	var sender *bot.Sender
	wakeSender := func() { // the sender is made below, with the platform's client
		if sender != nil {
			sender.Wake()
		}
	}
	plat, err := newPlatform(cfg, store, settings, log, version, worker.Wake, wakeSender, false)
	if err != nil {
		return nil, err
	}
	sender = newBotSender(store, settings, m, log, botDeps{
		Platform: plat.Client,
		Owners:   store, // the owners of each project's customer (db.Store.IsCustomerOwner)
		OnSent:   worker.Wake,
	})
	diagOpts := diagnostics.Options{
		ConnectTimeout: cfg.DiagnosticsConnectTimeout,
		RequestTimeout: cfg.DiagnosticsRequestTimeout,
		StaleAfter:     cfg.TransactionsStaleAfter,
		Origin:         cfg.PublicURL,
		WrapTransport:  m.WrapTransport(metrics.CallerDiagnostics),
		BotHeartbeat:   sender.LastBeat,
		ExportsEnabled: cfg.Export.Enabled,
		WebhookErrors:  webhookErrors,
	}
	if plat.Sync != nil {
		diagOpts.Platform = plat.Sync
	}
	diag := diagnostics.New(store, settings, diagOpts)
	appserviceSetup := &setup.Service{
		Settings:  settings,
		HTTP:      m.InstrumentClient(matrix.HTTPClient(3*time.Second, 10*time.Second), metrics.CallerAPI),
		PublicURL: cfg.PublicURL,
	}
	sessions := auth.NewSessionStore(store, key, strings.HasPrefix(cfg.PublicURL, "https://"))
	s := &Server{cfg: cfg, log: log, store: store, settings: settings, sessions: sessions, metrics: m, webhookErrors: webhookErrors, platform: plat}
	s.appservice = &appservice.Handler{
		Settings: settings,
		Recorder: recorder,
		Wake:     worker.Wake, // members changed in a managed room: re-sync it
		WakeBot:  sender.Wake, // commands queued: answer them
		Observer: m,
	}
	s.api = &api.Handler{
		Store:           store,
		Settings:        settings,
		AppserviceSetup: appserviceSetup,
		Diag:            diag,
		Log:             log,
		Wake:            worker.Wake,
		WakeBot:         sender.Wake,
		AutoCreateRooms: cfg.Provision.AutoCreateRooms,
		PublicURL:       cfg.PublicURL,
		Exports:         exportJob,
		Accounts:        worker,
		SessionThrottle: auth.NewThrottle(api.SessionsPerHour, time.Hour),
		HTTPClient:      appserviceSetup.HTTP,
		EventsSecret:    cfg.Platform.EventsSecret,
	}
	if plat.Sync != nil {
		s.api.Platform = plat.Sync
	}
	s.ui = &ui.Handler{
		Store:                store,
		Settings:             settings,
		Sessions:             sessions,
		Throttle:             auth.NewThrottle(5, 15*time.Minute),
		Logins:               auth.NewLoginThrottle(5, 15*time.Minute),
		Passwords:            auth.NewPasswords(cfg.PasswordCost),
		AppserviceSetup:      appserviceSetup,
		Diag:                 diag,
		Log:                  log,
		Wake:                 worker.Wake,
		WakeBot:              sender.Wake,
		Exports:              exportJob,
		ExportsDaily:         cfg.Export.Enabled,
		ExportsHour:          cfg.Export.Hour,
		ExportsRetentionDays: cfg.Export.RetentionDays,
		PublicURL:            cfg.PublicURL,
		TrustedProxies:       cfg.TrustedProxies,
		Version:              version,
	}
	s.health = &health.Handler{Store: store}
	// The WAL is checkpointed in the background, so that no commit pays for it.
	s.jobs = append(s.jobs, recorder.Run, store.NewCheckpointer(db.CheckpointOptions{Log: log}).Run, s.pruneLoop)
	s.jobs = append(s.jobs, worker.Run)
	s.jobs = append(s.jobs, exportJob.Run)
	s.jobs = append(s.jobs, sender.Run)
	if plat.Sync != nil {
		s.ui.Platform = plat.Sync
		s.ui.EventsSecret = cfg.Platform.EventsSecret
		s.jobs = append(s.jobs, plat.Sync.Run)
	}
	s.router = s.Routes()
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

// Platform is the platform sync, nil when no platform is configured.
func (s *Server) Platform() *platform.Syncer { return s.platform.Sync }

// PlatformClient is the configured platform client (for the bot's live reads), nil when
// no platform is configured.
func (s *Server) PlatformClient() *waldur.Client { return s.platform.Client }

// Settings is the settings store the server uses.
func (s *Server) Settings() *db.Settings { return s.settings }

// sessionKey returns SESSION_KEY, or the key generated on first run and kept in the database.
func sessionKey(ctx context.Context, cfg *Config, st *db.Settings) ([]byte, error) {
	if cfg.SessionKey != nil {
		return cfg.SessionKey, nil
	}
	k, err := st.Get(ctx, settings.SessionKey.Key)
	if err != nil {
		return nil, err
	}
	if k == "" {
		k = auth.RandomHex(32)
		if err := st.Set(ctx, map[string]string{settings.SessionKey.Key: k}); err != nil {
			return nil, err
		}
	}
	return []byte(k), nil
}

// Routes lists every route of the server in one place: the path, the method, who may
// call it (the middleware of its group) and the handler that answers.
func (s *Server) Routes() http.Handler {
	hs, a, u := s.appservice, s.api, s.ui
	r := chi.NewRouter()
	r.Use(s.metrics.HTTPMiddleware) // outside logRequests, so a recovered panic counts as its 500
	r.Use(logRequests(s.log, respond.Panic))
	r.Use(securityHeaders)
	// The 404 page knows who is signed in, so it keeps the navigation.
	r.NotFound(authenticate(s.store, s.sessions)(http.HandlerFunc(respond.NotFound)).ServeHTTP)
	r.MethodNotAllowed(respond.MethodNotAllowed)

	// Unauthenticated basics.
	r.Get("/healthz", health.Healthz)
	r.Get("/readyz", s.health.Readyz)
	r.Get("/metrics", s.metricsRoute()) // Bearer METRICS_TOKEN; 404 without one
	r.Handle("/static/*", http.StripPrefix("/static", static.Handler()))

	// The homeserver's side: authenticated by hs_token inside the handlers, never by session.
	r.Route("/_matrix/app", func(r chi.Router) {
		r.Use(countServerErrors(s.webhookErrors))
		r.Use(limitBody(s.cfg.WebhookBodyMB << 20))
		r.NotFound(respond.NotFound)
		r.MethodNotAllowed(respond.MethodNotAllowed)
		r.Put("/v1/transactions/{txnId}", hs.Transaction)
		r.Post("/v1/ping", hs.Ping)
		r.Get("/v1/users/{userId}", hs.QueryNotFound)
		r.Get("/v1/rooms/{roomAlias}", hs.QueryNotFound)
	})
	// Legacy (pre-v1) transaction path, still sent by old homeservers: the same handler.
	r.With(countServerErrors(s.webhookErrors), limitBody(s.cfg.WebhookBodyMB<<20)).Put("/transactions/{txnId}", hs.Transaction)

	// The platform's web hook: the secret in the path is the credential (no session, no
	// token, no cross-site check: the platform is no browser).
	r.With(limitBody(s.cfg.MaxBodyBytes)).Post("/api/waldur/events/{secret}/", a.PlatformEvent)

	// Cookie- or token-authenticated: CSRF protection, body limit, the user in the context.
	r.Group(func(r chi.Router) {
		r.Use(crossOrigin(s.cfg.PublicURL))
		r.Use(limitBody(s.cfg.MaxBodyBytes))
		r.Use(authenticate(s.store, s.sessions))

		r.Get("/login", u.LoginForm)
		r.Post("/login", u.Login)
		r.Post("/logout", u.Logout)

		// Dashboard pages: staff only.
		r.Group(func(r chi.Router) {
			r.Use(requireStaffPage)
			r.Get("/", u.Overview)
			r.Get("/account", u.Account)
			r.Post("/account/password", u.ChangePassword)
			r.Post("/account/tokens", u.CreateToken)
			r.Post("/account/tokens/{id}/revoke", u.RevokeToken)
			r.Post("/account/staff", u.CreateStaff)
			r.Post("/account/staff/{id}/deactivate", u.DeactivateStaff)
			r.Post("/account/staff/{id}/activate", u.ActivateStaff)
			r.Get("/transactions", u.Transactions)
			r.Get("/setup", u.SetupPage)
			r.Post("/setup", u.SetupSubmit)
			r.Post("/setup/provision-bot", u.SetupProvisionBot)
			r.Get("/settings", u.SettingsPage)
			r.Post("/settings", u.SettingsSubmit)
			r.Get("/diagnostics", u.DiagnosticsPage)
			r.Get("/diagnostics/results", u.DiagnosticsResults)
			r.Get("/diagnostics/summary", u.DiagnosticsSummary)
			r.Get("/rooms", u.RoomsPage)
			r.Get("/rooms/{uuid}", u.RoomDetail)
			r.Post("/rooms/{uuid}/retry", u.RoomRetry)
			r.Post("/rooms/{uuid}/disable", u.RoomDisable)
			r.Post("/rooms/{uuid}/reactivate", u.RoomReactivate)
			r.Post("/rooms/{uuid}/sync-members", u.RoomSyncMembers)
			r.Post("/rooms/{uuid}/join", u.RoomJoin)
			r.Post("/rooms/{uuid}/leave", u.RoomLeave)
			r.Post("/rooms/{uuid}/delete", u.RoomDelete)
			r.Post("/rooms/{uuid}/export_history", u.RoomExportHistory)
			r.Get("/rooms/{uuid}/exports", u.RoomExports)
			r.Get("/exports", u.ExportsPage)
			r.Get("/outbox", u.OutboxPage)
			r.Post("/outbox/{uuid}/retry", u.OutboxRetry)
			r.Get("/projects", u.ProjectsPage)
			r.Get("/projects/{uuid}", u.ProjectDetail)
			r.Post("/projects/{uuid}/room", u.ProjectCreateRoom)
			r.Get("/users", u.UsersPage)
			r.Get("/users/{uuid}", u.UserDetail)
			r.Get("/reprovision", u.ReprovisionPage)
			r.Post("/reprovision", u.ReprovisionSubmit)
			r.Get("/reprovision/progress", u.ReprovisionProgressFragment)
			r.Get("/platform", u.PlatformPage)
			r.Get("/platform/status", u.PlatformStatusFragment)
			r.Post("/platform/sync", u.PlatformSyncNow)
			r.Post("/platform/hook", u.PlatformRegisterHook)
		})

		// JSON API.
		r.Route("/api", func(r chi.Router) {
			r.Use(middleware.GetHead) // HEAD answers like GET without the body (net/http drops it)
			r.NotFound(respond.NotFound)
			r.MethodNotAllowed(respond.MethodNotAllowed)
			r.Get("/schema/", apidoc.Handler()) // the OpenAPI document: public, it holds no secret
			r.Group(func(r chi.Router) {
				r.Use(requireStaff)
				r.Get("/admin/matrix-appservice/status/", a.Status)
				r.Post("/admin/matrix-appservice/setup/", a.Setup)
				r.Post("/admin/matrix-appservice/provision-bot/", a.ProvisionBot)
				r.Get("/admin/matrix-appservice/registration.yaml", a.RegistrationFile)
				r.Get("/admin/matrix/diagnostics/", a.Diagnostics)
				r.Get("/admin/matrix/reprovision/", a.ReprovisionProgress)
				r.Post("/admin/matrix/reprovision/", a.Reprovision)
				r.Get("/admin/platform-sync/", a.PlatformSyncStatus)
				r.Post("/admin/platform-sync/", a.StartPlatformSync)
			})
			// Platform directory, rooms and profiles: any token reads, staff writes.
			r.Group(func(r chi.Router) {
				r.Use(staffWrites)
				r.Get("/users/", a.ListUsers)
				r.Post("/users/", a.CreateUser)
				r.Get("/users/{uuid}/", a.GetUser)
				r.Put("/users/{uuid}/", a.UpdateUser)
				r.Patch("/users/{uuid}/", a.UpdateUser)
				r.Post("/users/{uuid}/deactivate/", a.DeactivateUser)
				r.Post("/users/{uuid}/link_matrix_account/", a.LinkMatrixAccount)
				r.Get("/projects/", a.ListProjects)
				r.Post("/projects/", a.CreateProject)
				r.Get("/projects/{uuid}/", a.GetProject)
				r.Put("/projects/{uuid}/", a.UpdateProject)
				r.Patch("/projects/{uuid}/", a.UpdateProject)
				r.Delete("/projects/{uuid}/", a.DeleteProject)
				r.Get("/projects/{uuid}/members/", a.ListMembers)
				r.Put("/projects/{uuid}/members/", a.SetMembers)
				r.Post("/projects/{uuid}/members/", a.AddMember)
				r.Delete("/projects/{uuid}/members/{user}/", a.RemoveMember)
				r.Get("/customers/", a.ListCustomers)
				r.Post("/customers/", a.CreateCustomer)
				r.Get("/customers/{uuid}/", a.GetCustomer)
				r.Put("/customers/{uuid}/", a.UpdateCustomer)
				r.Patch("/customers/{uuid}/", a.UpdateCustomer)
				r.Delete("/customers/{uuid}/", a.DeleteCustomer)
				r.Get("/customers/{uuid}/owners/", a.ListOwners)
				r.Put("/customers/{uuid}/owners/", a.SetOwners)
				r.Post("/customers/{uuid}/owners/", a.AddOwner)
				r.Delete("/customers/{uuid}/owners/{user}/", a.RemoveOwner)
				r.Get("/matrix-rooms/", a.ListRooms)
				r.Post("/matrix-rooms/", a.CreateRoom)
				r.Get("/matrix-rooms/eligible_projects/", a.EligibleProjects)
				r.Get("/matrix-rooms/{uuid}/", a.GetRoom)
				r.Delete("/matrix-rooms/{uuid}/", a.DeleteRoom)
				r.Get("/matrix-rooms/{uuid}/members/", a.ListRoomMembers)
				r.Post("/matrix-rooms/{uuid}/sync_members/", a.SyncRoomMembers)
				r.Post("/matrix-rooms/{uuid}/retry/", a.RetryRoom)
				r.Post("/matrix-rooms/{uuid}/disable/", a.DisableRoom)
				r.Post("/matrix-rooms/{uuid}/reactivate/", a.ReactivateRoom)
				r.Post("/matrix-rooms/{uuid}/join/", a.JoinRoom)
				r.Post("/matrix-rooms/{uuid}/leave/", a.LeaveRoom)
				r.Post("/matrix-rooms/{uuid}/export_history/", a.ExportHistory)
				r.Post("/matrix-rooms/{uuid}/messages/", a.SendMessage)
				r.Get("/matrix-user-profiles/", a.ListProfiles)
			})
			// History exports: staff only, and 404 for everyone else.
			r.Group(func(r chi.Router) {
				r.Use(staffOrNotFound)
				r.Get("/matrix-exports/", a.ListExports)
				r.Get("/matrix-exports/{uuid}/", a.GetExport)
				r.Get("/matrix-exports/{uuid}/download/export/", a.DownloadExport)
				r.Get("/matrix-exports/{uuid}/download/media/", a.DownloadExportMedia)
			})
			// Any authenticated caller, writes included: the caller's own Matrix account,
			// and what members do with their own rooms.
			r.Group(func(r chi.Router) {
				r.Use(requireUser)
				r.Get("/matrix/credentials/", a.Credentials)
				r.Post("/matrix/session/", a.Session)
				r.Post("/matrix-rooms/{uuid}/open/", a.OpenRoom)
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

// ErrNoActiveStaff is returned by PrepareBootstrap (or FirstStaff.Create) when there is
// no active staff user and it cannot create one: nobody can sign in to the dashboard
// until someone runs "matrixas createstaff". The server serves all the same (the homeserver's transactions
// and the API's tokens do not need the dashboard), so serve logs it and goes on.
var ErrNoActiveStaff = errors.New("no active staff user")

// FirstStaff is the first staff user of a first start, checked and with its password
// chosen, not created yet.
type FirstStaff struct {
	Username string
	password string
	cost     int
	store    *db.Store
}

// PrepareBootstrap readies the first staff user, for when no active one exists, with the
// password from BOOTSTRAP_PASSWORD_FILE (which must pass auth.CheckPasswordPolicy) or a
// random one, to be shown once. Its checks are all quick: it returns nil when an active
// staff user exists, and an error wrapping ErrNoActiveStaff when none does and the name
// is taken by another user. FirstStaff.Create makes the user.
func PrepareBootstrap(ctx context.Context, cfg *Config, store *db.Store) (*FirstStaff, error) {
	n, err := store.CountStaff(ctx)
	if err != nil || n > 0 {
		return nil, err
	}
	switch _, err := store.UserByUsername(ctx, cfg.BootstrapUsername); {
	case err == nil:
		return nil, noBootstrapName(cfg.BootstrapUsername) // said before a password is read or hashed for nothing
	case !errors.Is(err, db.ErrNotFound):
		return nil, err
	}
	first := &FirstStaff{Username: cfg.BootstrapUsername, cost: cfg.PasswordCost, store: store}
	if cfg.BootstrapPasswordFile != "" {
		b, err := os.ReadFile(cfg.BootstrapPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("BOOTSTRAP_PASSWORD_FILE: %w", err)
		}
		first.password = strings.TrimRight(string(b), "\r\n")
		if err := auth.CheckPasswordPolicy(first.Username, first.password); err != nil {
			return nil, fmt.Errorf("BOOTSTRAP_PASSWORD_FILE: the password for %q is refused: %w", first.Username, err)
		}
	} else {
		first.password = randomPassword(first.Username)
	}
	return first, nil
}

// Create hashes the password (bcrypt: the slow step of a first start, about 260 ms at
// cost 12) and creates the user; it returns the password, to be shown once when random.
func (f *FirstStaff) Create(ctx context.Context) (password string, err error) {
	hash, err := auth.NewPasswords(f.cost).Hash(f.password)
	if err != nil {
		return "", fmt.Errorf("first-run staff password: %w", err)
	}
	u := &db.User{Username: f.Username, IsStaff: true, IsActive: true, PasswordHash: hash, FullName: "Administrator"}
	if err := f.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, db.ErrConflict) { // taken meanwhile
			return "", noBootstrapName(f.Username)
		}
		return "", err
	}
	return f.password, nil
}

func noBootstrapName(username string) error {
	return fmt.Errorf("%w, and the name %q (BOOTSTRAP_USERNAME) belongs to another user, so none was created: "+
		"nobody can sign in to the dashboard until you run 'matrixas createstaff NAME' (or set BOOTSTRAP_USERNAME to a free name and restart)",
		ErrNoActiveStaff, username)
}

// SignInsWaitFor makes the dashboard's sign-ins wait until done is closed (the first staff
// user is being created meanwhile). Call it before Run.
func (s *Server) SignInsWaitFor(done <-chan struct{}) { s.ui.FirstRun = done }

// randomPassword is a first-run password: 24 hex digits (96 bits), drawn again in the
// rare case the policy refuses it (all digits, or holding a short username).
func randomPassword(username string) string {
	for {
		if pw := auth.RandomHex(12); auth.CheckPasswordPolicy(username, pw) == nil {
			return pw
		}
	}
}
