package settings

import "time"

// The settings, named for code; All lists them in the order --help and the README show.
var (
	ListenAddr = &Setting{Env: "LISTEN_ADDR", Default: "127.0.0.1:8080", Format: HostPort,
		Hint: "address the HTTP server listens on"}
	DatabasePath = &Setting{Env: "DATABASE_PATH", Default: "./data/matrixas.db", Required: true,
		Hint: "SQLite database file, created with its folder on first run"}
	PublicURL = &Setting{Env: "PUBLIC_URL", Format: HTTPURL,
		Hint: "this server's URL as the homeserver and browsers reach it (https://... turns on Secure cookies; default for setup's url)"}
	LogLevel = &Setting{Env: "LOG_LEVEL", Default: "info", Format: SlogLevel,
		Hint: "debug, info, warn or error"}
	LogFormat = &Setting{Env: "LOG_FORMAT", Default: "text", Format: OneOf("text", "json"),
		Hint: "text or json"}
	MaxBodyBytes = &Setting{Env: "MAX_BODY_BYTES", Default: "1048576", Format: WholeNumber(1024, 0),
		Hint: "largest request body for the dashboard and /api/ (413 past it)"}
	WebhookMaxBodyMB = &Setting{Env: "WEBHOOK_MAX_BODY_MB", Default: "16", Format: WholeNumber(1, 1024),
		Hint: "largest transaction body from the homeserver, in MiB"}

	// The homeserver connection: runtime settings that the environment may fix.
	HomeserverURL = &Setting{Env: "MATRIX_HOMESERVER_URL", Key: "homeserver_url", Kind: Runtime, Required: true, Editable: true,
		Format: HTTPURL, Label: "Homeserver URL",
		Hint: "How this server reaches the homeserver's client API, e.g. http://synapse:8008 (without /_matrix)."}
	HomeserverPublicURL = &Setting{Env: "MATRIX_HOMESERVER_PUBLIC_URL", Key: "homeserver_public_url", Kind: Runtime, Editable: true,
		Format: HTTPURL, Label: "Public homeserver URL",
		Hint: "Optional: the URL browsers and Matrix clients use, when it differs from the homeserver URL. Leave it empty when they are the same."}
	HomeserverDomain = &Setting{Env: "MATRIX_HOMESERVER_DOMAIN", Key: "homeserver_domain", Kind: Runtime, Required: true, Editable: true,
		Format: ServerName, Label: "Homeserver domain (server_name)",
		Hint: "The homeserver's server_name: the part after the colon in @user:domain. Changing it changes the registration's namespaces: run setup again afterwards."}
	RegistrationSecret = &Setting{Env: "MATRIX_USER_REGISTRATION_SECRET", Key: "user_registration_secret", Kind: Runtime, Secret: true, Required: true, Editable: true,
		Format: SharedSecret, Label: "Registration shared secret",
		Hint: "The homeserver's registration_shared_secret (Synapse) or client_api.registration_shared_secret (Dendrite). Write-only: it is never shown; leave the field empty to keep the current one."}

	// Accounts and the bot: runtime settings that the environment may fix.
	UserIDFormat = &Setting{Env: "MATRIX_USER_ID_FORMAT", Key: "user_id_format", Kind: Runtime, Default: "username", Editable: true,
		Format: OneOf(UserIDFormats...), Label: "Matrix user ID format",
		Hint: "What a platform user's Matrix ID is made from: username, uuid (32 hex digits) or email_local (before the @, else the username). Changing it never renames an existing account."}
	ExternalLoginMethod = &Setting{Env: "MATRIX_EXTERNAL_LOGIN_METHOD", Key: "external_login_method", Kind: Runtime, Default: "none", Editable: true,
		Format: OneOf("none", "password", "oidc"), Label: "Sign-in from other Matrix clients",
		Hint: "How users sign in to the homeserver from their own Matrix clients, as GET /api/matrix/credentials/ tells them: none, password or oidc."}
	SiteName = &Setting{Env: "SITE_NAME", Key: "site_name", Kind: Runtime, Default: "Waldur", Editable: true,
		Format: rule("at most 100 characters", "Ensure this field has no more than 100 characters.", func(v string) bool { return len([]rune(v)) <= 100 }),
		Label:  "Site name", Hint: "The platform's name: the bot's display name is \"<site name> Bot\" (set when the bot is provisioned)."}
	LiveKitURL = &Setting{Env: "MATRIX_LIVEKIT_URL", Key: "livekit_url", Kind: Runtime, Editable: true,
		Format: HTTPURL, Label: "LiveKit service URL",
		Hint: "Optional: the LiveKit service (livekit_service_url) the homeserver's /.well-known/matrix/client should list for calls. When set, diagnostics expect it there."}

	BootstrapUsername = &Setting{Env: "BOOTSTRAP_USERNAME", Default: "admin",
		Hint: "staff user created on first run when no staff user exists"}
	BootstrapPasswordFile = &Setting{Env: "BOOTSTRAP_PASSWORD_FILE",
		Hint: "file holding the first-run staff password, which must pass the password rules (else a random one is printed once)"}
	SessionKey = &Setting{Env: "SESSION_KEY", Key: "session_key", Secret: true, Format: MinLength(32, "bytes"),
		Hint: "key that signs session cookies, at least 32 bytes (default: generated and kept in the database)"}
	DiagnosticsConnectTimeout = &Setting{Env: "DIAGNOSTICS_CONNECT_TIMEOUT", Default: "3s", Format: Duration,
		Hint: "diagnostics: TCP/TLS connect timeout"}
	DiagnosticsRequestTimeout = &Setting{Env: "DIAGNOSTICS_REQUEST_TIMEOUT", Default: "2s", Format: Duration,
		Hint: "diagnostics: timeout of each request"}
	TransactionsStaleAfter = &Setting{Env: "TRANSACTIONS_STALE_AFTER", Default: "24h", Format: Duration,
		Hint: "diagnostics: rooms exist but no transaction for this long = not ok"}
	TransactionRetention = &Setting{Env: "TRANSACTION_RETENTION", Default: "720h", Format: Duration,
		Hint: "transaction rows older than this are pruned (the count stays)"}
	TrustedProxies = &Setting{Env: "TRUSTED_PROXIES", Format: Prefixes,
		Hint: "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (login throttling per address)"}

	// The provisioning worker. Unset (no Default), each leaves the worker's own default,
	// which the hint states.
	AutoCreateRooms = &Setting{Env: "AUTO_CREATE_ROOMS", Format: Boolean,
		Hint: "create a Matrix room for every project automatically, true or false (default: false)"}
	ProvisionConcurrency = &Setting{Env: "PROVISION_CONCURRENCY", Format: WholeNumber(1, 256),
		Hint: "rooms and users the provisioning worker works on at once (default: 2)"}
	ProvisionMaxAttempts = &Setting{Env: "PROVISION_MAX_ATTEMPTS", Format: WholeNumber(1, 1000),
		Hint: "failures in a row after which a room goes to state error, until retried (default: 8)"}
	ProvisionBackoff = &Setting{Env: "PROVISION_BACKOFF", Format: Duration,
		Hint: "delay after a room's or user's first failure; doubles each time, with jitter (default: 5s)"}
	ProvisionMaxBackoff = &Setting{Env: "PROVISION_MAX_BACKOFF", Format: Duration,
		Hint: "longest delay between attempts (default: 10m)"}
	ProvisionInterval = &Setting{Env: "PROVISION_INTERVAL", Format: Duration,
		Hint: "how often the worker scans its queue without being woken by a write (default: 30s)"}

	// History export.
	ExportEncryptionKey = &Setting{Env: "EXPORT_ENCRYPTION_KEY", Secret: true,
		Hint: "master key that encrypts the history exports: exactly 32 random bytes in base64 (openssl rand -base64 32) (default: generated once into export-encryption.key beside the database)"}
	ExportDir = &Setting{Env: "EXPORT_DIR",
		Hint: "folder of the encrypted history export files, created when missing (default: exports beside the database)"}
	HistoryExportEnabled = &Setting{Env: "MATRIX_HISTORY_EXPORT_ENABLED", Default: "false", Format: Boolean,
		Hint: "export every active room's history daily, and a room's history before it is archived, true or false"}
	HistoryExportHour = &Setting{Env: "MATRIX_HISTORY_EXPORT_HOUR", Default: "2", Format: WholeNumber(0, 23),
		Hint: "hour of the day (UTC, 0 to 23) at which the daily exports are queued and retention is applied"}
	HistoryExportRetentionDays = &Setting{Env: "MATRIX_HISTORY_EXPORT_RETENTION_DAYS", Default: "90", Format: WholeNumber(0, 36500),
		Hint: "exports older than this many days are deleted daily, except each room's newest completed one; 0 keeps everything"}
	ExportMedia = &Setting{Env: "MATRIX_EXPORT_MEDIA", Default: "false", Format: Boolean,
		Hint: "also archive each export's attachments into a ZIP (50 MiB per file, 200 MiB per export), true or false"}
	ExportConcurrency = &Setting{Env: "EXPORT_CONCURRENCY", Default: "2", Format: WholeNumber(1, 16),
		Hint: "history exports that run at once (a room never has two)"}

	// The platform sync (Waldur). Unset WALDUR_URL leaves everything as before.
	WaldurURL = &Setting{Env: "WALDUR_URL", Format: HTTPURL,
		Hint: "the platform's (Waldur's) base URL, e.g. https://waldur.example.org: mirrors its customers, projects, users and roles (default: off)"}
	WaldurToken = &Setting{Env: "WALDUR_TOKEN", Secret: true, Format: APIToken,
		Hint: "API token of a staff or support user of the platform, sent as \"Authorization: Token <key>\"; needed with WALDUR_URL (default: unset)"}
	WaldurSyncInterval = &Setting{Env: "WALDUR_SYNC_INTERVAL", Default: "15m", Format: AtLeast(time.Minute, "1m"),
		Hint: "period of the platform sync's full reconcile, at least 1m; incremental runs come every minute in between"}
	WaldurEventsSecret = &Setting{Env: "WALDUR_EVENTS_SECRET", Secret: true, Format: MinLength(16, "characters"),
		Hint: "turns on the platform's event receiver at /api/waldur/events/<secret>/, at least 16 characters; needs WALDUR_URL (default: off)"}

	MetricsAddr = &Setting{Env: "METRICS_ADDR", Format: HostPort,
		Hint: "separate host:port serving only Prometheus /metrics, without credentials unless METRICS_TOKEN is set (default: off)"}
	MetricsToken = &Setting{Env: "METRICS_TOKEN", Secret: true, Format: MinLength(16, "characters"),
		Hint: "serve /metrics on the main listener to \"Authorization: Bearer <token>\", at least 16 characters (default: off)"}

	// The appservice registration: runtime settings that setup writes.
	AppserviceURL = &Setting{Key: "url", Kind: Runtime, Format: HTTPURL, Label: "This server's URL",
		Hint: "How the homeserver reaches this server (for transactions); the default is PUBLIC_URL."}
	SenderLocalpart = &Setting{Key: "sender_localpart", Kind: Runtime, Default: "waldur-bot", Format: Localpart, Label: "Bot user name",
		Hint: "The bot's localpart, e.g. waldur-bot for @waldur-bot:your.domain. Lowercase letters, digits and . _ = - /."}
	ASToken = &Setting{Key: "as_token", Kind: Runtime, Secret: true, Label: "Appservice token (as_token)",
		Hint: "Generated by setup: this server's token for calls to the homeserver."}
	HSToken = &Setting{Key: "hs_token", Kind: Runtime, Secret: true, Label: "Homeserver token (hs_token)",
		Hint: "Generated by setup: the homeserver's token for calls to this server."}
	Enabled = &Setting{Key: "enabled", Kind: Runtime, Label: "Appservice enabled",
		Hint: "\"true\" once setup has run."}
	BotProvisionStatus = &Setting{Key: "bot_provision_status", Kind: Runtime, Label: "Bot provisioning",
		Hint: "The outcome of the last bot provisioning: pending, ok, skipped or failed: <reason>."}
)

// UserIDFormats are the values of MATRIX_USER_ID_FORMAT.
var UserIDFormats = []string{"username", "uuid", "email_local"}

// All lists every setting.
var All = []*Setting{
	ListenAddr, DatabasePath, PublicURL, LogLevel, LogFormat, MaxBodyBytes, WebhookMaxBodyMB,
	HomeserverURL, HomeserverPublicURL, HomeserverDomain, RegistrationSecret,
	UserIDFormat, ExternalLoginMethod, SiteName, LiveKitURL,
	BootstrapUsername, BootstrapPasswordFile, SessionKey,
	DiagnosticsConnectTimeout, DiagnosticsRequestTimeout, TransactionsStaleAfter, TransactionRetention, TrustedProxies,
	AutoCreateRooms, ProvisionConcurrency, ProvisionMaxAttempts, ProvisionBackoff, ProvisionMaxBackoff, ProvisionInterval,
	ExportEncryptionKey, ExportDir, HistoryExportEnabled, HistoryExportHour, HistoryExportRetentionDays, ExportMedia, ExportConcurrency,
	MetricsAddr, MetricsToken,
	WaldurURL, WaldurToken, WaldurSyncInterval, WaldurEventsSecret,
	AppserviceURL, SenderLocalpart, ASToken, HSToken, Enabled, BotProvisionStatus,
}
