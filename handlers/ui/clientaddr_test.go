package ui

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	tests := []struct {
		name, remote, xff string
		trusted           []netip.Prefix
		want              string
	}{
		{"no proxies configured: header ignored", "10.1.1.1:555", "203.0.113.9", nil, "10.1.1.1"},
		{"untrusted peer: header ignored", "198.51.100.4:555", "203.0.113.9", proxies, "198.51.100.4"},
		{"trusted proxy: client from the header", "10.1.1.1:555", "203.0.113.9", proxies, "203.0.113.9"},
		{"spoofed left entries are skipped", "10.1.1.1:555", "1.2.3.4, 203.0.113.9", proxies, "203.0.113.9"},
		{"chain of trusted proxies", "10.1.1.1:555", "203.0.113.9, 192.0.2.7, 10.2.2.2", proxies, "203.0.113.9"},
		{"garbled header: the proxy", "10.1.1.1:555", "203.0.113.9, nonsense", proxies, "10.1.1.1"},
		{"no header: the proxy", "10.1.1.1:555", "", proxies, "10.1.1.1"},
		{"IPv6 client behind proxy", "10.1.1.1:555", "2001:db8::1", proxies, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.RemoteAddr = tt.remote
			if tt.xff != "" {
				r.Header.Set("X-Forwarded-For", tt.xff)
			}
			if got := ClientAddr(r, tt.trusted); got != tt.want {
				t.Errorf("ClientAddr = %q, want %q", got, tt.want)
			}
		})
	}
}
