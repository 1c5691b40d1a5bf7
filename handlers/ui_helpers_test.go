package handlers_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"matrixas/internal/testserver"
)

// Helpers for the dashboard's handler tests: a cookie client with JavaScript "off"
// (plain GETs and form POSTs, no redirects followed) and goquery on data-testid.

func tid(id string) string { return `[data-testid="` + id + `"]` }

// textOf is the whitespace-normalised text of the first element with data-testid=id.
func textOf(doc *goquery.Document, id string) string {
	return strings.Join(strings.Fields(doc.Find(tid(id)).First().Text()), " ")
}

// getPage GETs path with c and parses the HTML answer.
func getPage(t *testing.T, srv *testserver.Server, c *http.Client, path string) (*http.Response, *goquery.Document) {
	t.Helper()
	resp, err := c.Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, parse(t, resp)
}

// postForm POSTs a form to path with c, as a browser without JavaScript does.
func postForm(t *testing.T, srv *testserver.Server, c *http.Client, path string, form url.Values, headers ...string) (*http.Response, *goquery.Document) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp, parse(t, resp)
}

func parse(t *testing.T, resp *http.Response) *goquery.Document {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// postRedirectFlash POSTs the form, expects 303 to wantLocation, follows it, and returns
// the flashes the next page shows (kind: message).
func postRedirectFlash(t *testing.T, srv *testserver.Server, c *http.Client, path string, form url.Values, wantLocation string) []string {
	t.Helper()
	resp, doc := postForm(t, srv, c, path, form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s: status %d, want 303; page: %s", path, resp.StatusCode, strings.Join(strings.Fields(doc.Text()), " "))
	}
	if loc := resp.Header.Get("Location"); loc != wantLocation {
		t.Fatalf("POST %s: redirect to %q, want %q", path, loc, wantLocation)
	}
	resp, doc = getPage(t, srv, c, wantLocation)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s after POST: status %d", wantLocation, resp.StatusCode)
	}
	return flashes(doc)
}

func flashes(doc *goquery.Document) []string {
	var out []string
	doc.Find(tid("flash")).Each(func(_ int, s *goquery.Selection) {
		kind, _ := s.Attr("data-kind")
		out = append(out, kind+": "+strings.Join(strings.Fields(s.Find("span").Text()), " "))
	})
	return out
}
