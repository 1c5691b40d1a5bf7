// Package web is the HTTP server: configuration, the router that lists every route,
// and the middleware around the handlers.
package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"matrixas/db"
	"matrixas/matrix"
)

// Config is the server's configuration, read once from the environment at start.
type Config struct {
	ListenAddr    string
	DatabasePath  string
	PublicURL     string // how browsers and the homeserver reach this server; "" = unknown
	LogLevel      slog.Level
	LogFormat     string // text or json
	MaxBodyBytes  int64  // request body limit for the dashboard and the JSON API
	WebhookBodyMB int64  // request body limit for homeserver transactions, in MiB

	// Matrix settings fixed by the environment; empty = not fixed, stored in the database.
	HomeserverURL       string
	HomeserverPublicURL string
	HomeserverDomain    string
	RegistrationSecret  string

	BootstrapUsername     string
	BootstrapPasswordFile string
	SessionKey            []byte // nil = generated once and kept in the database

	DiagnosticsConnectTimeout time.Duration
	DiagnosticsRequestTimeout time.Duration
	TransactionsStaleAfter    time.Duration
	TransactionRetention      time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix

	Provision ProvisionConfig // the provisioning worker; zero fields = its defaults
	Metrics   MetricsConfig   // where /metrics is served; zero = nowhere

	// PasswordCost is the bcrypt cost of new staff password hashes; 0 = auth.PasswordCost.
	// It is not read from the environment: production always uses auth.PasswordCost, and
	// only tests lower it (one cost-12 hash takes seconds under the race detector).
	PasswordCost int
}

// Env is one documented environment variable.
type Env struct {
	Name, Default, Help string
	Secret              bool // also read from NAME_FILE
}

// EnvVars lists every variable LoadConfig reads, for --help and the README.
var EnvVars = []Env{
	{"LISTEN_ADDR", "127.0.0.1:8080", "address the HTTP server listens on", false},
	{"DATABASE_PATH", "./data/matrixas.db", "SQLite database file, created with its folder on first run", false},
	{"PUBLIC_URL", "", "this server's URL as the homeserver and browsers reach it (https://... turns on Secure cookies; default for setup's url)", false},
	{"LOG_LEVEL", "info", "debug, info, warn or error", false},
	{"LOG_FORMAT", "text", "text or json", false},
	{"MAX_BODY_BYTES", "1048576", "largest request body for the dashboard and /api/ (413 past it)", false},
	{"WEBHOOK_MAX_BODY_MB", "16", "largest transaction body from the homeserver, in MiB", false},
	{"MATRIX_HOMESERVER_URL", "", "homeserver URL this server calls; fixes the setting", false},
	{"MATRIX_HOMESERVER_PUBLIC_URL", "", "homeserver URL for browsers; fixes the setting", false},
	{"MATRIX_HOMESERVER_DOMAIN", "", "homeserver server_name; fixes the setting", false},
	{"MATRIX_USER_REGISTRATION_SECRET", "", "homeserver shared registration secret; fixes the setting", true},
	{"BOOTSTRAP_USERNAME", "admin", "staff user created on first run when no staff user exists", false},
	{"BOOTSTRAP_PASSWORD_FILE", "", "file holding the first-run staff password, which must pass the password rules (else a random one is printed once)", false},
	{"SESSION_KEY", "", "key that signs session cookies, at least 32 bytes (default: generated and kept in the database)", true},
	{"DIAGNOSTICS_CONNECT_TIMEOUT", "3s", "diagnostics: TCP/TLS connect timeout", false},
	{"DIAGNOSTICS_REQUEST_TIMEOUT", "2s", "diagnostics: timeout of each request", false},
	{"TRANSACTIONS_STALE_AFTER", "24h", "diagnostics: rooms exist but no transaction for this long = not ok", false},
	{"TRANSACTION_RETENTION", "720h", "transaction rows older than this are pruned (the count stays)", false},
	{"TRUSTED_PROXIES", "", "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-For names the client (login throttling per address)", false},
	{"AUTO_CREATE_ROOMS", "false", "create a Matrix room for every project automatically (true or false)", false},
	{"PROVISION_CONCURRENCY", "2", "rooms and users the provisioning worker works on at once", false},
	{"PROVISION_MAX_ATTEMPTS", "8", "failures in a row after which a room goes to state error (until retried)", false},
	{"PROVISION_BACKOFF", "5s", "delay after a room's or user's first failure; doubles each time, with jitter", false},
	{"PROVISION_MAX_BACKOFF", "10m", "longest delay between attempts", false},
	{"PROVISION_INTERVAL", "30s", "how often the worker scans its queue without being woken by a write", false},
	{"METRICS_ADDR", "", "separate host:port serving only Prometheus /metrics, without credentials unless METRICS_TOKEN is set (default: off)", false},
	{"METRICS_TOKEN", "", "serve /metrics on the main listener to \"Authorization: Bearer <token>\", at least 16 characters (default: off)", true},
}

// LoadConfig reads the configuration from getenv (os.Getenv in production) and validates
// it; the error names every bad variable.
func LoadConfig(getenv func(string) string) (*Config, error) {
	var errs []error
	get := func(name string) string {
		v := getenv(name)
		if v == "" {
			for _, e := range EnvVars {
				if e.Name == name {
					v = e.Default
				}
			}
		}
		return strings.TrimSpace(v)
	}
	secret := func(name string) string {
		if f := getenv(name + "_FILE"); f != "" {
			if getenv(name) != "" {
				errs = append(errs, fmt.Errorf("%s and %s_FILE: set one of them, not both", name, name))
				return ""
			}
			b, err := os.ReadFile(f)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s_FILE: %w", name, err))
				return ""
			}
			return strings.TrimRight(string(b), "\r\n")
		}
		return getenv(name)
	}
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 3s or 24h", name, get(name)))
		}
		return d
	}
	c := &Config{
		ListenAddr:                get("LISTEN_ADDR"),
		DatabasePath:              get("DATABASE_PATH"),
		PublicURL:                 strings.TrimRight(get("PUBLIC_URL"), "/"),
		LogFormat:                 get("LOG_FORMAT"),
		HomeserverURL:             strings.TrimRight(get("MATRIX_HOMESERVER_URL"), "/"),
		HomeserverPublicURL:       strings.TrimRight(get("MATRIX_HOMESERVER_PUBLIC_URL"), "/"),
		HomeserverDomain:          get("MATRIX_HOMESERVER_DOMAIN"),
		RegistrationSecret:        secret("MATRIX_USER_REGISTRATION_SECRET"),
		BootstrapUsername:         get("BOOTSTRAP_USERNAME"),
		BootstrapPasswordFile:     get("BOOTSTRAP_PASSWORD_FILE"),
		DiagnosticsConnectTimeout: duration("DIAGNOSTICS_CONNECT_TIMEOUT"),
		DiagnosticsRequestTimeout: duration("DIAGNOSTICS_REQUEST_TIMEOUT"),
		TransactionsStaleAfter:    duration("TRANSACTIONS_STALE_AFTER"),
		TransactionRetention:      duration("TRANSACTION_RETENTION"),
	}
	for _, f := range strings.FieldsFunc(get("TRUSTED_PROXIES"), func(r rune) bool { return r == ',' || r == ' ' }) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %q is not an IP address or CIDR", f))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR: %q is not host:port", c.ListenAddr))
	}
	if c.DatabasePath == "" {
		errs = append(errs, errors.New("DATABASE_PATH: must not be empty"))
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("LOG_LEVEL"))); err != nil {
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not debug, info, warn or error", get("LOG_LEVEL")))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q is not text or json", c.LogFormat))
	}
	for _, u := range []struct{ name, val string }{
		{"PUBLIC_URL", c.PublicURL}, {"MATRIX_HOMESERVER_URL", c.HomeserverURL}, {"MATRIX_HOMESERVER_PUBLIC_URL", c.HomeserverPublicURL},
	} {
		if u.val != "" && matrix.ValidHTTPURL(u.val) != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not an absolute http(s) URL", u.name, u.val))
		}
	}
	if c.HomeserverDomain != "" && !matrix.ValidDomain(c.HomeserverDomain) {
		errs = append(errs, fmt.Errorf("MATRIX_HOMESERVER_DOMAIN: %q is not a hostname with an optional :port", c.HomeserverDomain))
	}
	if n, err := strconv.ParseInt(get("MAX_BODY_BYTES"), 10, 64); err != nil || n < 1024 {
		errs = append(errs, fmt.Errorf("MAX_BODY_BYTES: %q is not a whole number of at least 1024", get("MAX_BODY_BYTES")))
	} else {
		c.MaxBodyBytes = n
	}
	if n, err := strconv.ParseInt(get("WEBHOOK_MAX_BODY_MB"), 10, 64); err != nil || n < 1 || n > 1024 {
		errs = append(errs, fmt.Errorf("WEBHOOK_MAX_BODY_MB: %q is not a whole number from 1 to 1024", get("WEBHOOK_MAX_BODY_MB")))
	} else {
		c.WebhookBodyMB = n
	}
	if k := secret("SESSION_KEY"); k != "" {
		if len(k) < 32 {
			errs = append(errs, errors.New("SESSION_KEY: must be at least 32 bytes"))
		}
		c.SessionKey = []byte(k)
	}
	var perrs []error
	c.Provision, perrs = loadProvisionConfig(getenv)
	errs = append(errs, perrs...)
	c.Metrics, perrs = loadMetricsConfig(get, secret, c.ListenAddr)
	errs = append(errs, perrs...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return c, nil
}

// FixedSettings returns the Matrix settings fixed by the environment, keyed like db settings.
func (c *Config) FixedSettings() map[string]string {
	return map[string]string{
		db.SettingHomeserverURL:       c.HomeserverURL,
		db.SettingHomeserverPublicURL: c.HomeserverPublicURL,
		db.SettingHomeserverDomain:    c.HomeserverDomain,
		db.SettingRegistrationSecret:  c.RegistrationSecret,
	}
}
