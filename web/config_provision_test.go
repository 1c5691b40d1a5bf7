package web_test

import (
	"strings"
	"testing"
	"time"

	"matrixas/web"
)

func TestLoadProvisionConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    web.ProvisionConfig
		wantErr string // substring; "" = valid
	}{
		{"unset: the worker's defaults", nil, web.ProvisionConfig{}, ""},
		{"all set", map[string]string{
			"AUTO_CREATE_ROOMS": "true", "PROVISION_CONCURRENCY": "4", "PROVISION_MAX_ATTEMPTS": "3",
			"PROVISION_BACKOFF": "2s", "PROVISION_MAX_BACKOFF": "1m", "PROVISION_INTERVAL": "10s",
		}, web.ProvisionConfig{AutoCreateRooms: true, Concurrency: 4, MaxAttempts: 3, Backoff: 2 * time.Second, MaxBackoff: time.Minute, Interval: 10 * time.Second}, ""},
		{"auto-create off", map[string]string{"AUTO_CREATE_ROOMS": "false"}, web.ProvisionConfig{}, ""},
		{"bad boolean", map[string]string{"AUTO_CREATE_ROOMS": "sometimes"}, web.ProvisionConfig{}, "AUTO_CREATE_ROOMS"},
		{"zero concurrency", map[string]string{"PROVISION_CONCURRENCY": "0"}, web.ProvisionConfig{}, "PROVISION_CONCURRENCY"},
		{"words for attempts", map[string]string{"PROVISION_MAX_ATTEMPTS": "many"}, web.ProvisionConfig{}, "PROVISION_MAX_ATTEMPTS"},
		{"negative backoff", map[string]string{"PROVISION_BACKOFF": "-1s"}, web.ProvisionConfig{}, "PROVISION_BACKOFF"},
		{"no unit", map[string]string{"PROVISION_INTERVAL": "30"}, web.ProvisionConfig{}, "PROVISION_INTERVAL"},
		{"backoff past its cap", map[string]string{"PROVISION_BACKOFF": "1h", "PROVISION_MAX_BACKOFF": "1m"}, web.ProvisionConfig{}, "PROVISION_MAX_BACKOFF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := web.LoadConfig(envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Provision != tt.want {
				t.Errorf("got %+v, want %+v", cfg.Provision, tt.want)
			}
		})
	}
}
