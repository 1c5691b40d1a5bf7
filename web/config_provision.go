package web

import (
	"fmt"
	"time"

	"matrixas/settings"
)

// ProvisionConfig tunes the provisioning worker. Zero values mean the worker's defaults
// (the ones the settings' hints state), so an unset variable stays zero here.
type ProvisionConfig struct {
	AutoCreateRooms bool
	Concurrency     int
	MaxAttempts     int
	Backoff         time.Duration
	MaxBackoff      time.Duration
	Interval        time.Duration
	// ExportTimeout bounds how long the disable path waits for a room's export before
	// archiving (0 = 10m); the export itself is on with MATRIX_HISTORY_EXPORT_ENABLED.
	ExportTimeout time.Duration
}

// loadProvisionConfig takes the worker's variables from e (already checked) and adds the
// one rule between two of them to e's errors.
func loadProvisionConfig(e *env) ProvisionConfig {
	c := ProvisionConfig{
		Concurrency: int(e.number(settings.ProvisionConcurrency)),
		MaxAttempts: int(e.number(settings.ProvisionMaxAttempts)),
		Backoff:     e.duration(settings.ProvisionBackoff),
		MaxBackoff:  e.duration(settings.ProvisionMaxBackoff),
		Interval:    e.duration(settings.ProvisionInterval),
	}
	c.AutoCreateRooms, _ = settings.ParseBool(e.value(settings.AutoCreateRooms))
	if c.Backoff > 0 && c.MaxBackoff > 0 && c.Backoff > c.MaxBackoff {
		e.errs = append(e.errs, fmt.Errorf("%s: %s is longer than %s %s", settings.ProvisionBackoff.Env, c.Backoff, settings.ProvisionMaxBackoff.Env, c.MaxBackoff))
	}
	return c
}
