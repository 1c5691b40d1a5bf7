// Package diagnostics runs the live checks behind GET /api/admin/matrix/diagnostics/ and
// the dashboard's diagnostics page: are the Matrix settings complete, does the homeserver
// answer, does it know this appservice, can it reach us, and is work flowing.
//
// Every network check runs concurrently with its own timeout, so one call is bounded by
// about the largest timeout whatever the homeserver does. A check that depends on one
// that failed says "Skipped — <why>" rather than reporting a second-hand error. No
// detail ever carries a token or the registration secret.
package diagnostics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"time"

	"maunium.net/go/mautrix/id"

	"matrixas/db"
	"matrixas/matrix"
)

// Check names, in the order a Report lists them.
const (
	CheckHomeserverConfigured       = "homeserver_configured"
	CheckHomeserverDomainConfigured = "homeserver_domain_configured"
	CheckHomeserverReachable        = "homeserver_reachable"
	CheckHomeserverServerName       = "homeserver_server_name"
	CheckPublicConfigured           = "public_homeserver_configured"
	CheckPublicReachable            = "public_homeserver_reachable"
	CheckASTokenConfigured          = "as_token_configured"
	CheckHSTokenConfigured          = "hs_token_configured"
	CheckSecretConfigured           = "registration_secret_configured"
	CheckSecretEnabled              = "registration_secret_enabled"
	CheckBotWhoami                  = "bot_whoami"
	CheckUserNamespace              = "appservice_user_namespace"
	CheckBotAdmin                   = "bot_homeserver_admin"
	CheckPing                       = "appservice_ping"
	CheckLiveKit                    = "livekit_configured"
	CheckTransactions               = "transactions_received"
	CheckRoomStats                  = "room_stats"
	CheckUserStats                  = "user_stats"
	CheckProvisioningQueue          = "provisioning_queue"
	CheckHistoryExports             = "history_exports"
	CheckWebhookErrors              = "webhook_errors"
	CheckBotRunning                 = "bot_running"
	CheckOutboxFailures             = "outbox_failures"

	// The platform's checks come last, and only when a platform is configured.
	CheckPlatformReachable = "platform_reachable"
	CheckPlatformSync      = "platform_sync"
	CheckPlatformEvents    = "platform_events"
)

// CheckNames lists every check name in report order.
var CheckNames = []string{
	CheckHomeserverConfigured, CheckHomeserverDomainConfigured, CheckHomeserverReachable,
	CheckHomeserverServerName, CheckPublicConfigured, CheckPublicReachable,
	CheckASTokenConfigured, CheckHSTokenConfigured, CheckSecretConfigured, CheckSecretEnabled,
	CheckBotWhoami, CheckUserNamespace, CheckBotAdmin, CheckPing, CheckLiveKit, CheckTransactions,
	CheckRoomStats, CheckUserStats, CheckProvisioningQueue, CheckHistoryExports, CheckWebhookErrors,
	CheckBotRunning, CheckOutboxFailures,
}

// OptionalChecks are listed only while their feature is in use (history_exports: when
// exports are enabled or any exist); every other check is in every report.
var OptionalChecks = []string{CheckHistoryExports}

// AlwaysListed returns the names of the checks every report lists, in report order.
func AlwaysListed() []string {
	var out []string
	for _, name := range CheckNames {
		if !slices.Contains(OptionalChecks, name) {
			out = append(out, name)
		}
	}
	return out
}

// PlatformCheckNames lists the platform's checks in report order: present only when a
// platform is configured (Options.Platform), platform_events only when its event
// receiver is on.
var PlatformCheckNames = []string{CheckPlatformReachable, CheckPlatformSync, CheckPlatformEvents}

// PlatformChecker runs the platform's checks (package platform implements it).
type PlatformChecker interface {
	Checks(ctx context.Context) []Check
}

// Check is one check's outcome, in the reference API's shape; Hint (the next step to
// take) is this server's addition and is present only on failing checks.
type Check struct {
	Name   string `json:"name"`
	Label  string `json:"label"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Hint   string `json:"hint,omitempty"`
}

// Report is the whole diagnostics answer: OK is true when every check is.
type Report struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Check returns the check called name, or nil.
func (r *Report) Check(name string) *Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

// Runner runs the diagnostics. The API handler and the dashboard page depend on this
// interface so that their tests can hand them a fake.
type Runner interface {
	Run(ctx context.Context) (*Report, error)
}

// Options tune Diagnostics; zero values take the defaults.
type Options struct {
	// ConnectTimeout bounds the TCP connect and the TLS handshake (default 3 s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds the wait for an answer once connected (default 2 s).
	RequestTimeout time.Duration
	// StaleAfter: with active rooms, no transaction for this long is a failure (default 24 h).
	StaleAfter time.Duration
	// QueueStuckAfter: a pending provisioning item older than this is a failure (default 1 h).
	QueueStuckAfter time.Duration
	// Origin is sent to the public homeserver URL to see whether browsers would get CORS
	// headers: this server's public URL; default "null".
	Origin string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// WrapTransport, when set, wraps the probes' transport (the server's metrics time
	// every homeserver call this way).
	WrapTransport func(http.RoundTripper) http.RoundTripper
	// ExportsEnabled is MATRIX_HISTORY_EXPORT_ENABLED: the history_exports check is
	// listed when it is on or when any export exists.
	ExportsEnabled bool
	// BotHeartbeat is when the bot's sender last turned its loop (bot.Sender.LastBeat);
	// nil = no sender runs in this process, and bot_running says so.
	BotHeartbeat func() time.Time
	// BotStaleAfter: a sender whose loop has not turned for this long is not running
	// (default 2 min; it turns at least every 30 s, and a send takes at most 30 s).
	BotStaleAfter time.Duration
	// WebhookErrors counts the 5xx answers to the homeserver (webhook_errors); nil =
	// none counted.
	WebhookErrors ErrorCounter
	// Platform adds the platform's checks after the others; nil when no platform is
	// configured (the checks are then absent).
	Platform PlatformChecker
}

// ErrorCounter counts the 5xx answers this server gave the homeserver
// (appservice.ErrorWindow): how many in the hour before now, counted since when.
type ErrorCounter interface {
	Count(now time.Time) (n int, since time.Time)
}

// Diagnostics runs the checks against the configured homeserver and the local database.
type Diagnostics struct {
	store    *db.Store
	settings *db.Settings
	client   *http.Client
	opts     Options
}

var _ Runner = (*Diagnostics)(nil)

// New returns the diagnostics for the store and settings.
func New(store *db.Store, settings *db.Settings, opts Options) *Diagnostics {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 3 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 2 * time.Second
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = 24 * time.Hour
	}
	if opts.QueueStuckAfter <= 0 {
		opts.QueueStuckAfter = time.Hour
	}
	if opts.BotStaleAfter <= 0 {
		opts.BotStaleAfter = 2 * time.Minute
	}
	if opts.Origin == "" {
		opts.Origin = "null"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	client := newHTTPClient(opts.ConnectTimeout, opts.RequestTimeout)
	if opts.WrapTransport != nil {
		client.Transport = opts.WrapTransport(client.Transport)
	}
	return &Diagnostics{
		store:    store,
		settings: settings,
		client:   client,
		opts:     opts,
	}
}

// Run runs every check. It fails only when this server's own database cannot be read;
// everything the homeserver does is reported as a check.
func (d *Diagnostics) Run(ctx context.Context) (*Report, error) {
	ms, err := d.settings.Matrix(ctx)
	if err != nil {
		return nil, fmt.Errorf("diagnostics: %w", err)
	}
	now := d.opts.Now()
	loc, err := d.store.DiagnosticStats(ctx, now.Add(-time.Hour))
	if err != nil {
		return nil, fmt.Errorf("diagnostics: %w", err)
	}
	exp, err := d.store.ExportStats(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("diagnostics: %w", err)
	}
	outbox, err := d.store.OutboxStats(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("diagnostics: %w", err)
	}
	var beat time.Time
	if d.opts.BotHeartbeat != nil {
		beat = d.opts.BotHeartbeat()
	}
	var platform chan []Check
	if d.opts.Platform != nil { // the platform's probe runs beside the homeserver's
		platform = make(chan []Check, 1)
		go func() { platform <- d.opts.Platform.Checks(ctx) }()
	}
	p := d.probe(ctx, ms, id.UserID(loc.ProvisionedUser))
	c := &checker{ms: ms, loc: loc, exp: exp, p: p, opts: d.opts, now: now, outbox: outbox, botBeat: beat}
	checks := c.all()
	if platform != nil {
		checks = append(checks, <-platform...)
	}

	secrets := matrix.Secrets(ms)
	rep := &Report{OK: true, Checks: checks}
	for i := range rep.Checks {
		ch := &rep.Checks[i]
		ch.Detail = matrix.Redact(ch.Detail, secrets)
		ch.Hint = matrix.Redact(ch.Hint, secrets)
		if ch.OK {
			ch.Hint = ""
		}
		rep.OK = rep.OK && ch.OK
	}
	return rep, nil
}

// Fingerprint is how a token is shown: "sha256:" and the first 12 hex digits of its
// SHA-256, enough to compare two installations and useless for guessing the token.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}
