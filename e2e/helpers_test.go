package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"matrixas/internal/browsertest"
	"matrixas/internal/testserver"
)

// api calls the JSON API with the staff token and fails the test on an unexpected status.
func api(t *testing.T, srv *testserver.Server, method, path string, body any, want int, out any) {
	t.Helper()
	if code := srv.JSON(t, method, path, srv.StaffToken, body, out); code != want {
		t.Fatalf("%s %s: status %d, want %d", method, path, code, want)
	}
}

// createProject pushes users, a project with their roles and its room through the API,
// as the platform's automation does, and returns the project's and the room's uuids.
func createProject(t *testing.T, srv *testserver.Server, name string, members map[string]string) (project, room string) {
	t.Helper()
	var roles []map[string]string
	for user, role := range members {
		var u struct{ UUID string }
		api(t, srv, http.MethodPost, "/api/users/", map[string]any{"username": user, "full_name": strings.ToUpper(user[:1]) + user[1:], "email": user + "@example.org", "is_active": true}, http.StatusCreated, &u)
		roles = append(roles, map[string]string{"user": u.UUID, "role": role})
	}
	var p, r struct{ UUID string }
	api(t, srv, http.MethodPost, "/api/projects/", map[string]string{"name": name, "description": "Project " + name}, http.StatusCreated, &p)
	api(t, srv, http.MethodPut, "/api/projects/"+p.UUID+"/members/", roles, http.StatusOK, nil)
	api(t, srv, http.MethodPost, "/api/matrix-rooms/", map[string]string{"project": p.UUID}, http.StatusCreated, &r)
	return p.UUID, r.UUID
}

// fetch GETs path with the browser's cookies (as the signed-in user) and returns the body.
func fetch(t *testing.T, b *browsertest.Browser, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.BaseURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range b.Cookies() {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// shots saves a screenshot of each step, named after it (stable names, so the README
// can link them), at desktop width and, when asked, at phone width.
type shots struct {
	b   *browsertest.Browser
	dir string
}

func (s *shots) take(t *testing.T, name string, phone bool) {
	t.Helper()
	s.b.Screenshot(s.dir, name)
	if phone {
		s.b.SetViewport(390, 844)
		s.b.Screenshot(s.dir, name+"-phone")
		s.b.SetViewport(1280, 900)
	}
	s.b.AssertCleanConsole()
}

// waitText waits until the element with data-testid=id shows want.
func waitText(t *testing.T, b *browsertest.Browser, id, want string, timeout time.Duration) {
	t.Helper()
	var last string
	b.WaitFor(timeout, fmt.Sprintf("%s to read %q (last %q)", id, want, last), func() bool {
		if !b.Exists(id) {
			return false
		}
		last = b.TextContent(id)
		return last == want
	})
}

// flashes are the flash messages on the current page, joined by " | ". DevTools reads
// them, so this works with the page's JavaScript off too.
func flashes(b *browsertest.Browser) string {
	return browsertest.Run(b, chromedp.EvaluateAsDevTools[string](
		`[...document.querySelectorAll('[data-testid=flash] span')].map(e => e.textContent.trim().replace(/\s+/g, " ")).join(" | ")`))
}

// attr reads an attribute of the element with data-testid=id ("" when absent).
func attr(b *browsertest.Browser, id, name string) string {
	return browsertest.Run(b, chromedp.EvaluateAsDevTools[string](fmt.Sprintf(
		`(document.querySelector('[data-testid=%q]') || {getAttribute: () => ""}).getAttribute(%q) || ""`, id, name)))
}
