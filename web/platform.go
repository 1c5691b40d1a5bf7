package web

import (
	"context"
	"log/slog"

	"matrixas/bot"
	"matrixas/db"
	"matrixas/platform"
	"matrixas/waldur"
)

// platformParts are the platform sync's pieces, all nil when WALDUR_URL is unset.
type platformParts struct {
	// Client is the configured platform client: the sync reads the directory through
	// it and the bot's live reads (!status, !orders) may share it.
	Client *waldur.Client
	Sync   *platform.Syncer
}

// newPlatform builds the platform client and the sync job from cfg.Platform (nothing
// when no platform is configured). The diagnostics get a client of their own that
// answers within their timeouts and never retries.
func newPlatform(cfg *Config, store *db.Store, settings *db.Settings, log *slog.Logger, version string, wake, wakeSender func(), describe bool) (platformParts, error) {
	pc := cfg.Platform
	if !pc.Enabled() {
		return platformParts{}, nil
	}
	client, err := waldur.New(waldur.Config{URL: pc.URL, Token: pc.Token, UserAgent: "matrixas/" + version, Logger: log})
	if err != nil {
		return platformParts{}, err
	}
	probe, err := waldur.New(waldur.Config{URL: pc.URL, Token: pc.Token, UserAgent: "matrixas/" + version,
		HTTPClient:     waldur.NewHTTPClient(cfg.DiagnosticsConnectTimeout),
		RequestTimeout: cfg.DiagnosticsConnectTimeout + cfg.DiagnosticsRequestTimeout, MaxAttempts: 1})
	if err != nil {
		return platformParts{}, err
	}
	sync := platform.New(store, client, platform.Options{
		Interval:         pc.SyncInterval,
		AutoCreateRooms:  cfg.Provision.AutoCreateRooms,
		EventsEnabled:    pc.EventsSecret != "",
		EventsStaleAfter: cfg.TransactionsStaleAfter,
		TokenFingerprint: waldur.Fingerprint(pc.Token),
		Probe:            probe,
		Wake:             wake,
		WakeSender:       wakeSender,
		Describe:         describe,
		Rules: func(ctx context.Context) (db.ProfileRules, error) {
			ms, err := settings.Matrix(ctx)
			if err != nil {
				return db.ProfileRules{}, err
			}
			return db.ProfileRules{Domain: ms.HomeserverDomain, BotLocalpart: ms.SenderLocalpart}, nil
		},
		Log: log,
	})
	return platformParts{Client: client, Sync: sync}, nil
}

// NewPlatformSync builds the platform sync from the configuration for use outside a
// server (matrixas sync): nil when no platform is configured. Writes it applies queue
// their role notifications like the server's.
func NewPlatformSync(cfg *Config, store *db.Store, log *slog.Logger, version string) (*platform.Syncer, error) {
	settings := db.NewSettings(store, cfg.FixedSettings())
	store.SetRoleNotices(bot.RoleNotices{})
	parts, err := newPlatform(cfg, store, settings, newRedactingLogger(log, settings, cfg.Platform.Token, cfg.Platform.EventsSecret), version, nil, nil, true)
	return parts.Sync, err
}
