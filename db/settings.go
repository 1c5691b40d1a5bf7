package db

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"

	"matrixas/settings"

	"maunium.net/go/mautrix/id"
)

// MatrixSettings is the resolved view of the runtime settings (settings.RuntimeSettings):
// each from the environment when it fixes it, else from the database, else its default.
// The appservice's settings have fields; any runtime setting is read with Value.
type MatrixSettings struct {
	HomeserverURL       string
	HomeserverPublicURL string
	HomeserverDomain    string
	RegistrationSecret  string
	ASToken             string
	HSToken             string
	SenderLocalpart     string
	AppserviceURL       string
	BotProvisionStatus  BotStatus
	Enabled             bool
	// Fixed names the keys whose value comes from the environment and cannot be changed here.
	Fixed map[string]bool

	values map[string]string // every runtime setting's resolved value, by key
}

// BotStatus is bot_provision_status: what became of the last attempt to register the
// appservice's bot on the homeserver (the seed's values).
type BotStatus string

// The bot's statuses besides BotFailed's; "" means never tried.
const (
	BotPending BotStatus = "pending" // setup has just run; the attempt follows
	BotOK      BotStatus = "ok"
	BotSkipped BotStatus = "skipped" // no homeserver could be reached to try
)

// BotFailed is the status of an attempt the homeserver refused: "failed: <reason>".
func BotFailed(reason string) BotStatus { return BotStatus("failed: " + reason) }

// matrixFields are the string fields of MatrixSettings, by the setting each holds.
var matrixFields = map[*settings.Setting]func(*MatrixSettings) *string{
	settings.HomeserverURL:       func(m *MatrixSettings) *string { return &m.HomeserverURL },
	settings.HomeserverPublicURL: func(m *MatrixSettings) *string { return &m.HomeserverPublicURL },
	settings.HomeserverDomain:    func(m *MatrixSettings) *string { return &m.HomeserverDomain },
	settings.RegistrationSecret:  func(m *MatrixSettings) *string { return &m.RegistrationSecret },
	settings.ASToken:             func(m *MatrixSettings) *string { return &m.ASToken },
	settings.HSToken:             func(m *MatrixSettings) *string { return &m.HSToken },
	settings.SenderLocalpart:     func(m *MatrixSettings) *string { return &m.SenderLocalpart },
	settings.AppserviceURL:       func(m *MatrixSettings) *string { return &m.AppserviceURL },
}

// Value is the resolved value of a runtime setting ("" for any other): its field's when
// MatrixSettings has one (so a view built by hand in a test answers too), else the
// value resolved with the others.
func (m *MatrixSettings) Value(s *settings.Setting) string {
	if f := matrixFields[s]; f != nil {
		return *f(m)
	}
	return m.values[s.Key]
}

// PublicURL is the homeserver URL browsers use: the public one, or the internal one when unset.
func (m *MatrixSettings) PublicURL() string {
	if m.HomeserverPublicURL != "" {
		return m.HomeserverPublicURL
	}
	return m.HomeserverURL
}

// ProfileRules are the settings that derive platform users' Matrix user IDs.
func (m *MatrixSettings) ProfileRules() ProfileRules {
	return ProfileRules{Domain: m.HomeserverDomain, BotLocalpart: m.SenderLocalpart, Format: m.Value(settings.UserIDFormat)}
}

// BotUserID is "@<localpart>:<domain>", or "" when the domain is unknown.
func (m *MatrixSettings) BotUserID() id.UserID {
	if m.HomeserverDomain == "" || m.SenderLocalpart == "" {
		return ""
	}
	return id.NewUserID(m.SenderLocalpart, m.HomeserverDomain)
}

// Settings reads and writes runtime settings. It is the one place that resolves a value
// from the environment (fixed) before the database, and it caches the resolved view
// because the webhook reads it on every request; every write goes through it and drops
// the cache after commit.
type Settings struct {
	store *Store
	fixed map[string]string
	cache atomic.Pointer[MatrixSettings]
	gen   atomic.Uint64 // bumped by every write, so a read racing a write never caches stale values
}

// NewSettings returns the settings store; fixed holds non-empty values from the environment.
func NewSettings(store *Store, fixed map[string]string) *Settings {
	f := make(map[string]string, len(fixed))
	for k, v := range fixed {
		if v != "" {
			f[k] = v
		}
	}
	return &Settings{store: store, fixed: f}
}

// IsFixed reports whether key is set by the environment.
func (s *Settings) IsFixed(key string) bool {
	_, ok := s.fixed[key]
	return ok
}

// Matrix returns the resolved settings. The result is shared: do not modify it.
func (s *Settings) Matrix(ctx context.Context) (*MatrixSettings, error) {
	if m := s.cache.Load(); m != nil {
		return m, nil
	}
	gen := s.gen.Load()
	vals, err := s.all(ctx)
	if err != nil {
		return nil, err
	}
	values := map[string]string{}
	for _, st := range settings.RuntimeSettings() {
		v, fixed := s.fixed[st.Key]
		if !fixed {
			v = vals[st.Key]
		}
		if v == "" {
			v = st.Default
		}
		values[st.Key] = v
	}
	m := &MatrixSettings{
		BotProvisionStatus: BotStatus(values[settings.BotProvisionStatus.Key]),
		Enabled:            values[settings.Enabled.Key] == "true",
		Fixed:              map[string]bool{},
		values:             values,
	}
	for st, field := range matrixFields {
		*field(m) = values[st.Key]
	}
	for k := range s.fixed {
		m.Fixed[k] = true
	}
	if s.gen.Load() == gen {
		s.cache.CompareAndSwap(nil, m)
	}
	return m, nil
}

func (s *Settings) all(ctx context.Context) (map[string]string, error) {
	rows, err := s.store.r.QueryContext(ctx, `SELECT key, value FROM settings`)
	if err != nil {
		return nil, fmt.Errorf("db: read settings: %w", err)
	}
	defer rows.Close()
	vals := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("db: read settings: %w", err)
		}
		vals[k] = v
	}
	return vals, rows.Err()
}

// Get returns one raw database value ("" when unset), ignoring the environment.
func (s *Settings) Get(ctx context.Context, key string) (string, error) {
	var v string
	err := s.store.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if err == sql.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("db: read setting %s: %w", key, err)
	}
	return v, nil
}

// Set stores values in one transaction. Keys fixed by the environment are refused.
func (s *Settings) Set(ctx context.Context, values map[string]string) error {
	return s.Update(ctx, func(tx *sql.Tx) error {
		for k, v := range values {
			if err := s.SetTx(ctx, tx, k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetTx stores one value inside a caller's transaction; call it through Update so the
// cache is dropped after the commit.
func (s *Settings) SetTx(ctx context.Context, tx *sql.Tx, key, value string) error {
	if s.IsFixed(key) {
		return fmt.Errorf("db: setting %s is fixed by the environment", key)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, key, value, now())
	if err != nil {
		return fmt.Errorf("db: write setting %s: %w", key, err)
	}
	return nil
}

// Update runs fn in a write transaction and drops the cached view afterwards, whether or
// not fn succeeded.
func (s *Settings) Update(ctx context.Context, fn func(tx *sql.Tx) error) error {
	defer func() {
		s.gen.Add(1)
		s.cache.Store(nil)
	}()
	return s.store.Tx(ctx, fn)
}
