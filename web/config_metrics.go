package web

import (
	"errors"
	"fmt"
	"net"
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

// minMetricsToken is the shortest METRICS_TOKEN accepted: it guards a network endpoint.
const minMetricsToken = 16

// loadMetricsConfig reads METRICS_ADDR and METRICS_TOKEN (or METRICS_TOKEN_FILE) with
// LoadConfig's get and secret readers; listenAddr is LISTEN_ADDR, which Addr must differ from.
func loadMetricsConfig(get, secret func(string) string, listenAddr string) (MetricsConfig, []error) {
	var errs []error
	c := MetricsConfig{Addr: get("METRICS_ADDR"), Token: secret("METRICS_TOKEN")}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR: %q is not host:port", c.Addr))
		} else if c.Addr == listenAddr {
			errs = append(errs, errors.New("METRICS_ADDR: must differ from LISTEN_ADDR (to serve metrics on the main listener, set METRICS_TOKEN instead)"))
		}
	}
	if c.Token != "" && len(c.Token) < minMetricsToken {
		errs = append(errs, fmt.Errorf("METRICS_TOKEN: must be at least %d characters", minMetricsToken))
	}
	return c, errs
}
