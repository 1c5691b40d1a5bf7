package web

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ProvisionConfig tunes the provisioning worker. Zero values mean the worker's defaults
// (the ones EnvVars documents), so an unset variable stays zero here.
type ProvisionConfig struct {
	AutoCreateRooms bool
	Concurrency     int
	MaxAttempts     int
	Backoff         time.Duration
	MaxBackoff      time.Duration
	Interval        time.Duration
}

// loadProvisionConfig reads the worker's variables; it returns one error per bad one.
func loadProvisionConfig(getenv func(string) string) (ProvisionConfig, []error) {
	var c ProvisionConfig
	var errs []error
	val := func(name string) string { return strings.TrimSpace(getenv(name)) }
	if s := val("AUTO_CREATE_ROOMS"); s != "" {
		switch strings.ToLower(s) {
		case "true", "1", "yes", "on":
			c.AutoCreateRooms = true
		case "false", "0", "no", "off":
		default:
			errs = append(errs, fmt.Errorf("AUTO_CREATE_ROOMS: %q is not true or false", s))
		}
	}
	for _, n := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"PROVISION_CONCURRENCY", &c.Concurrency, 1, 256}, {"PROVISION_MAX_ATTEMPTS", &c.MaxAttempts, 1, 1000}} {
		s := val(n.name)
		if s == "" {
			continue
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < n.min || v > n.max {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number from %d to %d", n.name, s, n.min, n.max))
			continue
		}
		*n.dst = v
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"PROVISION_BACKOFF", &c.Backoff}, {"PROVISION_MAX_BACKOFF", &c.MaxBackoff}, {"PROVISION_INTERVAL", &c.Interval}} {
		s := val(d.name)
		if s == "" {
			continue
		}
		v, err := time.ParseDuration(s)
		if err != nil || v <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration such as 5s or 10m", d.name, s))
			continue
		}
		*d.dst = v
	}
	if c.Backoff > 0 && c.MaxBackoff > 0 && c.Backoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("PROVISION_BACKOFF: %s is longer than PROVISION_MAX_BACKOFF %s", c.Backoff, c.MaxBackoff))
	}
	return c, errs
}
