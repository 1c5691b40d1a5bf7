package web

import (
	"errors"

	"matrixas/settings"
)

// MetricsConfig says where Prometheus metrics are served. Both empty (the default) means
// they are not served at all: they tell anyone who can read them how busy the server
// is, how many rooms and users it manages and which version runs, so an operator opts
// in, either with a private listener or with a token.
type MetricsConfig struct {
	// Addr is a separate listener (host:port) that serves only /metrics. Without Token
	// it asks for no credentials, so bind it to an address only the scraper reaches.
	Addr string
	// Token, when set, serves /metrics on the main listener too, to requests with
	// "Authorization: Bearer <token>" (and requires the same on Addr).
	Token string
}

// loadMetricsConfig takes METRICS_ADDR and METRICS_TOKEN from e (already checked) and
// adds the rule that the metrics listener is not LISTEN_ADDR (listenAddr) to e's errors.
func loadMetricsConfig(e *env, listenAddr string) MetricsConfig {
	c := MetricsConfig{Addr: e.value(settings.MetricsAddr), Token: e.value(settings.MetricsToken)}
	if c.Addr != "" && c.Addr == listenAddr {
		e.errs = append(e.errs, errors.New("METRICS_ADDR: must differ from LISTEN_ADDR (to serve metrics on the main listener, set METRICS_TOKEN instead)"))
	}
	return c
}
