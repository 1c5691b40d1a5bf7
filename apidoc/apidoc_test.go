package apidoc_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-chi/chi/v5"
	"gopkg.in/yaml.v3"

	"matrixas/apidoc"
	"matrixas/internal/testserver"
)

// loadDoc parses and validates the served document with kin-openapi.
func loadDoc(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(apidoc.JSON())
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI: %v", err)
	}
	return doc
}

func TestDocumentIsValidOpenAPI(t *testing.T) {
	doc := loadDoc(t)
	if doc.OpenAPI != apidoc.Version {
		t.Errorf("openapi %q, want %q", doc.OpenAPI, apidoc.Version)
	}
	// The YAML rendering says the same as the JSON.
	var fromJSON, fromYAML any
	if err := json.Unmarshal(apidoc.JSON(), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(apidoc.YAML(), &fromYAML); err != nil {
		t.Fatalf("YAML does not parse: %v", err)
	}
	if !reflect.DeepEqual(fromJSON, normalizeYAML(fromYAML)) {
		t.Error("the YAML document differs from the JSON one")
	}
	if _, err := openapi3.NewLoader().LoadFromData(apidoc.YAML()); err != nil {
		t.Errorf("kin-openapi cannot load the YAML document: %v", err)
	}
}

// normalizeYAML turns what yaml.v3 decodes into what encoding/json would (float64 numbers).
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeYAML(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeYAML(e)
		}
	case int:
		return float64(x)
	}
	return v
}

// TestSeedOperations checks the four operations of the reference API's contract
// (seed/admin-matrix-api.txt): their ids, paths and methods.
func TestSeedOperations(t *testing.T) {
	doc := loadDoc(t)
	tests := []struct{ method, path, id string }{
		{http.MethodGet, "/api/admin/matrix-appservice/status/", "admin_matrix_appservice_status_retrieve"},
		{http.MethodGet, "/api/admin/matrix/diagnostics/", "admin_matrix_diagnostics_retrieve"},
		{http.MethodPost, "/api/admin/matrix-appservice/setup/", "admin_matrix_appservice_setup"},
		{http.MethodPost, "/api/admin/matrix/reprovision/", "admin_matrix_reprovision"},
	}
	for _, tt := range tests {
		item := doc.Paths.Value(tt.path)
		if item == nil {
			t.Errorf("no path %s", tt.path)
			continue
		}
		op := item.GetOperation(tt.method)
		if op == nil {
			t.Errorf("no %s %s", tt.method, tt.path)
			continue
		}
		if op.OperationID != tt.id {
			t.Errorf("%s %s: operationId %q, want %q", tt.method, tt.path, op.OperationID, tt.id)
		}
	}
}

// fieldType renders a property's type as the seed writes it: "string", "integer",
// "array of objects".
func fieldType(s *openapi3.Schema) string {
	typ := strings.Join(s.Type.Slice(), "|")
	if typ == "array" && s.Items != nil && s.Items.Value.Type.Is("object") {
		return "array of objects"
	}
	if s.Format == "uri" {
		return typ + " (uri)"
	}
	return typ
}

// TestSeedComponents checks the seed's models field by field: names and types exactly.
func TestSeedComponents(t *testing.T) {
	doc := loadDoc(t)
	tests := []struct {
		component string
		fields    map[string]string
	}{
		{"MatrixAppserviceStatus", map[string]string{
			"enabled": "boolean", "as_token_configured": "boolean", "hs_token_configured": "boolean",
			"sender_localpart": "string", "bot_user_id": "string", "webhook_path": "string",
			"homeserver_url": "string", "homeserver_domain": "string", "transaction_count": "integer",
		}},
		{"MatrixDiagnostics", map[string]string{"ok": "boolean", "checks": "array of objects"}},
		{"MatrixDiagnosticsCheck", map[string]string{"name": "string", "label": "string", "ok": "boolean", "detail": "string", "hint": "string"}},
		{"MatrixAppserviceSetupRequest", map[string]string{
			"url": "string", "sender_localpart": "string", "homeserver_url": "string (uri)",
			"homeserver_public_url": "string (uri)", "homeserver_domain": "string", "user_registration_secret": "string",
		}},
		{"MatrixAppserviceSetupResponse", map[string]string{
			"registration_yaml": "string", "as_token": "string", "hs_token": "string",
			"sender_localpart": "string", "webhook_url": "string", "bot_provision_status": "string",
		}},
		{"MatrixReprovisionResponse", map[string]string{"rooms_reprovisioned": "integer", "users_reset": "integer"}},
	}
	for _, tt := range tests {
		ref := doc.Components.Schemas[tt.component]
		if ref == nil {
			t.Errorf("no component %s", tt.component)
			continue
		}
		got := map[string]string{}
		for name, p := range ref.Value.Properties {
			got[name] = fieldType(p.Value)
		}
		if !reflect.DeepEqual(got, tt.fields) {
			t.Errorf("%s fields:\n got %v\nwant %v", tt.component, got, tt.fields)
		}
	}
	secret := doc.Components.Schemas["MatrixAppserviceSetupRequest"].Value.Properties["user_registration_secret"].Value
	if !secret.WriteOnly {
		t.Error("user_registration_secret is not writeOnly")
	}
	checks := doc.Components.Schemas["MatrixDiagnostics"].Value.Properties["checks"].Value.Items
	if checks.Ref != "#/components/schemas/MatrixDiagnosticsCheck" {
		t.Errorf("checks items are %q, want the MatrixDiagnosticsCheck component", checks.Ref)
	}
}

func TestSecuritySchemes(t *testing.T) {
	doc := loadDoc(t)
	token := doc.Components.SecuritySchemes["tokenAuth"]
	if token == nil || token.Value.Type != "apiKey" || token.Value.In != "header" || token.Value.Name != "Authorization" {
		t.Errorf("tokenAuth = %+v, want apiKey in header Authorization", token)
	}
	cookie := doc.Components.SecuritySchemes["cookieAuth"]
	if cookie == nil || cookie.Value.Type != "apiKey" || cookie.Value.In != "cookie" || cookie.Value.Name == "" {
		t.Errorf("cookieAuth = %+v, want apiKey in cookie", cookie)
	}
	schema := doc.Paths.Value("/api/schema/").Get
	if schema.Security == nil || len(*schema.Security) != 1 || len((*schema.Security)[0]) != 0 {
		t.Errorf("GET /api/schema/ security = %v, want [{}] (anonymous allowed)", schema.Security)
	}
}

// apiRoutes walks the real router and returns its /api/ routes as "METHOD pattern".
func apiRoutes(t *testing.T, ts *testserver.Server) []string {
	t.Helper()
	routes, ok := ts.Web.Handler().(chi.Routes)
	if !ok {
		t.Fatalf("the root handler is a %T, not a chi router", ts.Web.Handler())
	}
	var out []string
	err := chi.Walk(routes, func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(pattern, "/api/") {
			out = append(out, method+" "+pattern)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// documented returns the document's operations as "METHOD path".
func documented(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

// TestEveryAPIRouteIsDocumented walks the router: an /api/ route without an operation
// (or an operation without a route) fails, so the document cannot silently fall behind.
func TestEveryAPIRouteIsDocumented(t *testing.T) {
	ts := testserver.New(t)
	doc := loadDoc(t)
	routes := apiRoutes(t, ts)
	if len(routes) < 10 {
		t.Fatalf("chi.Walk found only %d /api/ routes: %v", len(routes), routes)
	}
	ops := documented(doc)
	for _, r := range routes {
		if !slices.Contains(ops, r) {
			t.Errorf("route %s has no operation in the OpenAPI document: add one to specs() in apidoc/build.go", r)
		}
	}
	for _, o := range ops {
		if !slices.Contains(routes, o) {
			t.Errorf("the OpenAPI document describes %s, but the router has no such route", o)
		}
	}
}

// TestSchemaEndpoint serves the document to anyone, as JSON or YAML.
func TestSchemaEndpoint(t *testing.T) {
	ts := testserver.New(t)
	tests := []struct {
		name, query, token string
		status             int
		contentType        string
		body               []byte
	}{
		{"anonymous JSON", "", "", http.StatusOK, "application/json", apidoc.JSON()},
		{"explicit JSON", "?format=json", "", http.StatusOK, "application/json", apidoc.JSON()},
		{"YAML", "?format=yaml", "", http.StatusOK, "application/yaml; charset=utf-8", apidoc.YAML()},
		{"with a token", "", ts.UserToken, http.StatusOK, "application/json", apidoc.JSON()},
		{"unknown format", "?format=xml", "", http.StatusBadRequest, "application/json", nil},
		{"invalid token", "", "not-a-token", http.StatusUnauthorized, "application/json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := ts.Request(t, http.MethodGet, "/api/schema/"+tt.query, tt.token, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tt.contentType)
			}
			if tt.body != nil && string(body) != string(tt.body) {
				t.Error("the body is not the document")
			}
		})
	}

	// An ETag lets clients revalidate cheaply.
	resp, _ := ts.Request(t, http.MethodGet, "/api/schema/", "", nil)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/schema/", nil)
	req.Header.Set("If-None-Match", etag)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", r2.StatusCode)
	}
}

// TestNoSecretsInDocument: the document is public, so it must not carry anything
// installation-specific.
func TestNoSecretsInDocument(t *testing.T) {
	ts := testserver.New(t, testserver.Options{Env: map[string]string{
		"MATRIX_USER_REGISTRATION_SECRET": "registration-secret-value-123",
		"PUBLIC_URL":                      "https://bridge.example.org",
	}})
	_, body := ts.Request(t, http.MethodGet, "/api/schema/", "", nil)
	for _, s := range []string{"registration-secret-value-123", "bridge.example.org", ts.StaffToken} {
		if strings.Contains(string(body), s) {
			t.Errorf("the document contains %q", s)
		}
	}
}
