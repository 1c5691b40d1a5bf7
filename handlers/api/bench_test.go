package api_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"matrixas/internal/testserver"
)

// BenchmarkStatus measures the status endpoint (cached settings + one counter row).
func BenchmarkStatus(b *testing.B) {
	s := testserver.New(b, testserver.Options{Env: map[string]string{"LOG_LEVEL": "error"}})
	s.Setup(b, testserver.SetupBody())
	h := s.Web.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/api/admin/matrix-appservice/status/", nil)
		req.Header.Set("Authorization", "Token "+s.StaffToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
