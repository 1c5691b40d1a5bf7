// Package web is the HTTP server: configuration, the router that lists every route,
// and the middleware around the handlers.
package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"matrixas/settings"
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

	// Fixed holds the runtime settings the environment fixes, by database key (values
	// cleaned and checked); nil when it fixes none.
	Fixed map[string]string

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
	Export    ExportConfig    // the history exports
	Platform  PlatformConfig  // the platform sync; zero = off

	// PasswordCost is the bcrypt cost of new staff password hashes; 0 = auth.PasswordCost.
	// It is not read from the environment: production always uses auth.PasswordCost, and
	// only tests lower it (one cost-12 hash takes seconds under the race detector).
	PasswordCost int
}

// env reads the settings of settings.FromEnvironment from getenv: each cleaned (spaces,
// a URL's trailing slash) and checked against its format, a secret also from its _FILE
// variant. Every bad variable is an error in errs, named and never echoing a secret.
type env struct {
	given map[*settings.Setting]string // values the environment sets, cleaned
	errs  []error
}

func readEnv(getenv func(string) string) *env {
	e := &env{given: map[*settings.Setting]string{}}
	for _, s := range settings.FromEnvironment() {
		raw := getenv(s.Env)
		if s.Secret {
			if f := getenv(s.FileEnv()); f != "" {
				if raw != "" {
					e.errs = append(e.errs, fmt.Errorf("%s and %s: set one of them, not both", s.Env, s.FileEnv()))
					continue
				}
				b, err := os.ReadFile(f)
				if err != nil {
					e.errs = append(e.errs, fmt.Errorf("%s: %w", s.FileEnv(), err))
					continue
				}
				raw = strings.TrimRight(string(b), "\r\n")
			}
		}
		if raw == "" {
			continue // unset: the default
		}
		v := s.Clean(raw)
		switch {
		case v == "" && s.Default == "":
			// Blanks where nothing is the default: unset too.
		case s.Validate(v) == nil:
		case s.Secret:
			e.errs = append(e.errs, fmt.Errorf("%s: must be %s", s.Env, s.Format.Want))
			continue
		default:
			e.errs = append(e.errs, fmt.Errorf("%s: %q is not %s", s.Env, v, s.Format.Want))
			continue
		}
		e.given[s] = v
	}
	return e
}

// value is the setting's value: the environment's, else its default. A variable set to
// blanks is empty, not the default.
func (e *env) value(s *settings.Setting) string {
	if v, ok := e.given[s]; ok {
		return v
	}
	return s.Default
}

// duration is a checked Duration value (zero when unset without a default: the
// component's own default then).
func (e *env) duration(s *settings.Setting) time.Duration {
	d, _ := time.ParseDuration(e.value(s))
	return d
}

// number is a checked WholeNumber value (zero when unset without a default).
func (e *env) number(s *settings.Setting) int64 {
	n, _ := strconv.ParseInt(e.value(s), 10, 64)
	return n
}

// LoadConfig reads the configuration from getenv (os.Getenv in production) and validates
// it against the settings table; the error names every bad variable.
func LoadConfig(getenv func(string) string) (*Config, error) {
	e := readEnv(getenv)
	c := &Config{
		ListenAddr:                e.value(settings.ListenAddr),
		DatabasePath:              e.value(settings.DatabasePath),
		PublicURL:                 e.value(settings.PublicURL),
		LogFormat:                 e.value(settings.LogFormat),
		MaxBodyBytes:              e.number(settings.MaxBodyBytes),
		WebhookBodyMB:             e.number(settings.WebhookMaxBodyMB),
		BootstrapUsername:         e.value(settings.BootstrapUsername),
		BootstrapPasswordFile:     e.value(settings.BootstrapPasswordFile),
		DiagnosticsConnectTimeout: e.duration(settings.DiagnosticsConnectTimeout),
		DiagnosticsRequestTimeout: e.duration(settings.DiagnosticsRequestTimeout),
		TransactionsStaleAfter:    e.duration(settings.TransactionsStaleAfter),
		TransactionRetention:      e.duration(settings.TransactionRetention),
	}
	c.LogLevel.UnmarshalText([]byte(e.value(settings.LogLevel))) // checked by its format
	c.TrustedProxies, _ = settings.ParsePrefixes(e.value(settings.TrustedProxies))
	if k := e.value(settings.SessionKey); k != "" {
		c.SessionKey = []byte(k)
	}
	for _, s := range settings.FromEnvironment() {
		v := e.value(s)
		if s.Kind == settings.Runtime {
			v = e.given[s] // a runtime setting's default is the fallback, not a fixed value
		}
		switch {
		case s.Kind == settings.Runtime && v != "":
			if c.Fixed == nil {
				c.Fixed = map[string]string{}
			}
			c.Fixed[s.Key] = v
		case s.Kind == settings.Startup && s.Required && v == "":
			e.errs = append(e.errs, fmt.Errorf("%s: must not be empty", s.Env))
		}
	}
	c.Provision = loadProvisionConfig(e)
	c.Metrics = loadMetricsConfig(e, c.ListenAddr)
	c.Export = loadExportConfig(e, getenv)
	c.Platform = loadPlatformConfig(e)
	if len(e.errs) > 0 {
		return nil, fmt.Errorf("configuration: %w", errors.Join(e.errs...))
	}
	return c, nil
}

// FixedSettings returns the runtime settings fixed by the environment, keyed like db
// settings (db.NewSettings takes it).
func (c *Config) FixedSettings() map[string]string { return c.Fixed }
