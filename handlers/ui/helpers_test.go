package ui_test

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

// assertAccessible checks what every page must do: each visible control has a label
// (or an aria-label), and nothing inline that the CSP would block.
func assertAccessible(t *testing.T, doc *goquery.Document) {
	t.Helper()
	doc.Find("input, select, textarea").Each(func(_ int, s *goquery.Selection) {
		typ, _ := s.Attr("type")
		if _, hidden := s.Attr("hidden"); typ == "hidden" || hidden {
			return
		}
		if _, ok := s.Attr("aria-label"); ok {
			return
		}
		id, _ := s.Attr("id")
		if id == "" || doc.Find(`label[for="`+id+`"]`).Length() == 0 {
			name, _ := s.Attr("name")
			t.Errorf("control %q (id %q) has no label", name, id)
		}
	})
	if doc.Find("script:not([src]), style, [style]").Length() > 0 {
		t.Error("inline script or style: the CSP blocks it")
	}
	doc.Find("*").Each(func(_ int, s *goquery.Selection) {
		for _, a := range s.Nodes[0].Attr {
			if strings.HasPrefix(a.Key, "on") || strings.HasPrefix(a.Key, "hx-on") {
				t.Errorf("inline handler %s on <%s>", a.Key, s.Nodes[0].Data)
			}
		}
	})
	ids := map[string]bool{}
	doc.Find("[id]").Each(func(_ int, s *goquery.Selection) {
		id, _ := s.Attr("id")
		if ids[id] {
			t.Errorf("duplicate id %q", id)
		}
		ids[id] = true
	})
}
