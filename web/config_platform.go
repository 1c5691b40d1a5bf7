package web

import (
	"errors"
	"fmt"
	"time"

	"matrixas/settings"
)

// PlatformConfig connects the platform sync (Waldur); zero (no URL) leaves it off.
type PlatformConfig struct {
	URL          string
	Token        string // a secret: never logged, never shown (waldur.Fingerprint is)
	SyncInterval time.Duration
	EventsSecret string // "" = no event receiver; a secret like the token
}

// Enabled reports whether a platform is configured.
func (c PlatformConfig) Enabled() bool { return c.URL != "" }

// loadPlatformConfig takes the platform's variables from e (already checked against
// their formats) and adds the rules between them to e's errors, naming the variables
// and never a secret's value.
func loadPlatformConfig(e *env) PlatformConfig {
	c := PlatformConfig{
		URL:          e.value(settings.WaldurURL),
		Token:        e.value(settings.WaldurToken),
		SyncInterval: e.duration(settings.WaldurSyncInterval),
		EventsSecret: e.value(settings.WaldurEventsSecret),
	}
	switch {
	case c.URL != "" && c.Token == "":
		e.errs = append(e.errs, fmt.Errorf("%s: must be set (or %s) when %s is", settings.WaldurToken.Env, settings.WaldurToken.FileEnv(), settings.WaldurURL.Env))
	case c.URL == "" && c.Token != "":
		e.errs = append(e.errs, fmt.Errorf("%s: must be set when %s is", settings.WaldurURL.Env, settings.WaldurToken.Env))
	}
	if c.URL == "" && c.EventsSecret != "" {
		e.errs = append(e.errs, errors.New(settings.WaldurEventsSecret.Env+": the event receiver needs "+settings.WaldurURL.Env))
	}
	return c
}
