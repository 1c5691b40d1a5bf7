package fakewaldur

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// apiSubset is Waldur's API description, cut to what a connector needs (a byte-for-byte
// copy of ../shared/waldur/waldur-api-subset.yaml; its info.description names the source
// and its MIT license). The fake's every answer is checked against it.
//
//go:embed waldur-api-subset.yaml
var apiSubset []byte

// spec is the parsed description with the routes the fake serves.
type spec struct {
	doc    *openapi3.T
	routes []route
	opts   []openapi3.SchemaValidationOption
}

// route is one path template of the description, matched segment by segment.
type route struct {
	template string   // "/api/projects/{uuid}/"
	segments []string // "api", "projects", "{uuid}"
	item     *openapi3.PathItem
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(apiSubset)
	if err != nil {
		return nil, fmt.Errorf("fakewaldur: load the API description: %w", err)
	}
	// The published examples of list_users and user-permissions wrap their list in a
	// second list; the schemas themselves are sound.
	if err := doc.Validate(context.Background(), openapi3.DisableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("fakewaldur: the API description is invalid: %w", err)
	}
	// The fake may write only described fields: an object schema refuses others, so a
	// field the fake makes up fails its own check instead of reaching a client.
	for _, ref := range doc.Components.Schemas {
		if sc := ref.Value; sc != nil && len(sc.Properties) > 0 && sc.AdditionalProperties.Has == nil && sc.AdditionalProperties.Schema == nil {
			sc.AdditionalProperties.Has = openapi3.Ptr(false)
		}
	}
	// kin-openapi checks only date, date-time and byte by default; the platform's uuids
	// are 32 hex digits (Python's uuid.hex), URLs absolute, emails addresses.
	doc.SetStringFormatValidators(map[string]openapi3.StringFormatValidator{
		"uuid":  openapi3.NewRegexpFormatValidator(`^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`),
		"email": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail),
		"uri": openapi3.NewCallbackValidator(func(s string) error {
			u, err := url.Parse(s)
			if err != nil || !u.IsAbs() || u.Host == "" {
				return errors.New("not an absolute URL")
			}
			return nil
		}),
	})
	s := &spec{doc: doc, opts: doc.GetSchemaValidationOptions()}
	for template, item := range doc.Paths.Map() {
		s.routes = append(s.routes, route{template: template, segments: split(template), item: item})
	}
	// Literal segments win over parameters ("/api/hooks-web/" before "/{uuid}/").
	sort.Slice(s.routes, func(i, j int) bool { return s.routes[i].template < s.routes[j].template })
	return s, nil
})

func split(path string) []string {
	return strings.Split(strings.Trim(path, "/"), "/")
}

// Properties returns the fields the API description gives a component schema
// ("Project", "Permission", "WebHook"...), so a client's tests can check it reads only
// fields that exist.
func Properties(schema string) ([]string, error) {
	sp, err := loadSpec()
	if err != nil {
		return nil, err
	}
	ref := sp.doc.Components.Schemas[schema]
	if ref == nil || ref.Value == nil {
		return nil, fmt.Errorf("fakewaldur: the API description has no schema %q", schema)
	}
	names := make([]string, 0, len(ref.Value.Properties))
	for name := range ref.Value.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// match finds the described path a request path belongs to, with its parameters.
func (s *spec) match(path string) (*route, map[string]string) {
	if !strings.HasSuffix(path, "/") {
		return nil, nil // the platform's paths all end in a slash
	}
	got := split(path)
	for i := range s.routes {
		r := &s.routes[i]
		if len(r.segments) != len(got) {
			continue
		}
		params := map[string]string{}
		ok := true
		for k, seg := range r.segments {
			if strings.HasPrefix(seg, "{") {
				params[strings.Trim(seg, "{}")] = got[k]
			} else if seg != got[k] {
				ok = false
				break
			}
		}
		if ok {
			return r, params
		}
	}
	return nil, nil
}

// validateRequest checks a request against its operation: parameters (and that no
// undescribed query parameter is sent: the client must not rely on filters the API
// does not have), and the body. It leaves req.Body readable.
func (s *spec) validateRequest(ctx context.Context, req *http.Request, rt *route, op *openapi3.Operation, params map[string]string) (*openapi3filter.RequestValidationInput, error) {
	known := map[string]bool{}
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
			known[p.Value.Name] = true
		}
	}
	for name := range req.URL.Query() {
		if !known[name] {
			return nil, fmt.Errorf("query parameter %q is not described for %s %s", name, req.Method, rt.template)
		}
	}
	in := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: params,
		Route:      &routers.Route{Spec: s.doc, Path: rt.template, PathItem: rt.item, Method: req.Method, Operation: op},
		Options: &openapi3filter.Options{
			AuthenticationFunc:      openapi3filter.NoopAuthenticationFunc, // the fake checks the token itself
			MultiError:              true,
			SchemaValidationOptions: s.opts,
		},
	}
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	err := openapi3filter.ValidateRequest(ctx, in)
	req.Body = io.NopCloser(bytes.NewReader(body))
	return in, err
}

// validateResponse checks an answer against the operation's description. Statuses the
// description does not list (401, 404, 429, 5xx) pass: the subset describes successes.
func (s *spec) validateResponse(ctx context.Context, in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{MultiError: true, SchemaValidationOptions: s.opts},
	})
}

// shorten keeps a validation error readable: kin-openapi quotes schemas and values.
func shorten(err error) string {
	msg := err.Error()
	if len(msg) > 3000 {
		msg = msg[:3000] + "..."
	}
	return msg
}
