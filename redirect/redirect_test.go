package redirect

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// location is what http.Redirect sends for target, on a request to /login.
func location(target string) string {
	rec := httptest.NewRecorder()
	http.Redirect(rec, httptest.NewRequest(http.MethodPost, "/login", nil), target, http.StatusSeeOther)
	return rec.Header().Get("Location")
}

func TestLocal(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/", "/"},
		{"/rooms", "/rooms"},
		{"/rooms/", "/rooms/"},
		{"/rooms?state=error&search=a%20b", "/rooms?state=error&search=a%20b"},
		{"/rooms/?next=//evil.example", "/rooms/?next=//evil.example"},
		{"/a/../rooms", "/rooms"},
		{"/./rooms/x/..", "/rooms"},
		{"/./rooms//x", "FALLBACK"},
		{"", "FALLBACK"},
		{"rooms", "FALLBACK"},
		{"../rooms", "FALLBACK"},
		{`/a/../\evil.example`, "FALLBACK"},
		{`/./\evil.example`, "FALLBACK"},
		{`/\evil.example`, "FALLBACK"},
		{"//evil.example", "FALLBACK"},
		{"/..//evil.example", "FALLBACK"}, // cleaned into a local path, but written to deceive
		{"///evil.example", "FALLBACK"},
		{"https://evil.example/", "FALLBACK"},
		{"/%2F%2Fevil.example", "FALLBACK"},
		{"/%5Cevil.example", "FALLBACK"},
		{"/%252F%252Fevil.example", "FALLBACK"},
		{"/%25252F%25252Fevil.example", "FALLBACK"},
		{"/\t/evil.example", "FALLBACK"},
		{"/%09/evil.example", "FALLBACK"},
		{"/rooms?x=\n", "FALLBACK"},
		{"/é", "FALLBACK"},
		{"/%zz", "FALLBACK"},
		{"/\xff", "FALLBACK"},
	}
	for _, tt := range tests {
		got := Local(tt.target, "FALLBACK")
		if got != tt.want {
			t.Errorf("Local(%q) = %q, want %q", tt.target, got, tt.want)
		}
		if got != "FALLBACK" && location(got) != got {
			t.Errorf("Local(%q) = %q, but http.Redirect sends %q", tt.target, got, location(got))
		}
	}
}

// FuzzLocal: whatever the target, Local returns the fallback or a local path that
// http.Redirect sends unchanged.
func FuzzLocal(f *testing.F) {
	for _, s := range []string{"/", "/rooms?x=1", `/a/../\evil`, "//evil", "/%2F%2Fevil", "/\t/evil", "/a/./b/../c/", "/%252F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got := Local(target, "FALLBACK")
		if got == "FALLBACK" {
			return
		}
		if !IsLocal(got) {
			t.Fatalf("Local(%q) = %q, which is not local", target, got)
		}
		if loc := location(got); loc != got {
			t.Fatalf("Local(%q) = %q, but http.Redirect sends %q", target, got, loc)
		}
		if location(target) != got {
			t.Fatalf("Local(%q) = %q, but http.Redirect(target) sends %q: the check is not on the sent form", target, got, location(target))
		}
	})
}
