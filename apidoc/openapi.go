// Package apidoc is the OpenAPI 3 description of the JSON API, served at /api/schema/.
//
// The document is built in Go: response schemas are reflected from the very structs the
// handlers encode (their json tags decide field names, omitempty decides "required",
// pointers decide "nullable"), so a field added to a response shows up here without
// anyone remembering to. What reflection cannot know (descriptions, enums, request
// bodies, status codes) is written next to each operation. Tests keep it honest: every
// /api/ route of the real router must have an operation, and real responses from a test
// server are validated against the document with kin-openapi.
package apidoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"gopkg.in/yaml.v3"
)

// Version is the OpenAPI version the document follows (the one DRF's spectacular emits).
const Version = "3.0.3"

// Document is an OpenAPI 3.0 document: the subset this API needs.
type Document struct {
	OpenAPI    string                `json:"openapi"`
	Info       Info                  `json:"info"`
	Paths      map[string]*PathItem  `json:"paths"`
	Components Components            `json:"components"`
	Security   []SecurityRequirement `json:"security,omitempty"`
	Tags       []Tag                 `json:"tags,omitempty"`
}

// Info describes the API.
type Info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
}

// Tag groups operations.
type Tag struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// PathItem holds the operations on one path.
type PathItem struct {
	Get    *Operation `json:"get,omitempty"`
	Put    *Operation `json:"put,omitempty"`
	Post   *Operation `json:"post,omitempty"`
	Delete *Operation `json:"delete,omitempty"`
	Patch  *Operation `json:"patch,omitempty"`
}

// Operation returns the operation for an HTTP method, or nil.
func (p *PathItem) Operation(method string) *Operation {
	switch method {
	case "GET":
		return p.Get
	case "PUT":
		return p.Put
	case "POST":
		return p.Post
	case "DELETE":
		return p.Delete
	case "PATCH":
		return p.Patch
	}
	return nil
}

// setOperation stores op under method; it reports false for a method a PathItem cannot hold.
func (p *PathItem) setOperation(method string, op *Operation) bool {
	switch method {
	case "GET":
		p.Get = op
	case "PUT":
		p.Put = op
	case "POST":
		p.Post = op
	case "DELETE":
		p.Delete = op
	case "PATCH":
		p.Patch = op
	default:
		return false
	}
	return true
}

// Operation is one method on one path.
type Operation struct {
	OperationID string                 `json:"operationId"`
	Summary     string                 `json:"summary,omitempty"`
	Description string                 `json:"description,omitempty"`
	Tags        []string               `json:"tags,omitempty"`
	Parameters  []*Parameter           `json:"parameters,omitempty"`
	RequestBody *RequestBody           `json:"requestBody,omitempty"`
	Responses   map[string]*Response   `json:"responses"`
	Security    *[]SecurityRequirement `json:"security,omitempty"` // nil = the document's
}

// SecurityRequirement names security schemes that together authenticate a request; an
// empty one means "anonymous is fine".
type SecurityRequirement map[string][]string

// Parameter is a path or query parameter.
type Parameter struct {
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema"`
}

// RequestBody is an operation's body, by media type.
type RequestBody struct {
	Description string               `json:"description,omitempty"`
	Required    bool                 `json:"required,omitempty"`
	Content     map[string]MediaType `json:"content"`
}

// MediaType is one representation of a body.
type MediaType struct {
	Schema *Schema `json:"schema"`
}

// Response is one status code's answer, or a $ref to a shared one.
type Response struct {
	Ref         string               `json:"$ref,omitempty"`
	Description string               `json:"description,omitempty"`
	Headers     map[string]*Header   `json:"headers,omitempty"`
	Content     map[string]MediaType `json:"content,omitempty"`
}

// Header is a response header.
type Header struct {
	Description string  `json:"description,omitempty"`
	Required    bool    `json:"required,omitempty"`
	Schema      *Schema `json:"schema"`
}

// Schema is a JSON schema as OpenAPI 3.0 has it.
type Schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Description          string             `json:"description,omitempty"`
	Nullable             bool               `json:"nullable,omitempty"`
	ReadOnly             bool               `json:"readOnly,omitempty"`
	WriteOnly            bool               `json:"writeOnly,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	MaxLength            *int               `json:"maxLength,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Maximum              *float64           `json:"maximum,omitempty"`
	Properties           map[string]*Schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	Items                *Schema            `json:"items,omitempty"`
	AdditionalProperties *Schema            `json:"additionalProperties,omitempty"`
	OneOf                []*Schema          `json:"oneOf,omitempty"`
	AnyOf                []*Schema          `json:"anyOf,omitempty"`
	Example              any                `json:"example,omitempty"`
}

// Components are the shared schemas, responses and security schemes.
type Components struct {
	Schemas         map[string]*Schema         `json:"schemas"`
	Responses       map[string]*Response       `json:"responses,omitempty"`
	SecuritySchemes map[string]*SecurityScheme `json:"securitySchemes"`
}

// SecurityScheme is one way to authenticate.
type SecurityScheme struct {
	Type        string `json:"type"`
	In          string `json:"in,omitempty"`
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
}

// rendered is the document in both formats, built once.
type rendered struct{ json, yaml []byte }

var current = sync.OnceValue(func() *rendered {
	doc := Build()
	j, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("apidoc: marshal: %v", err))
	}
	y, err := toYAML(j)
	if err != nil {
		panic(fmt.Sprintf("apidoc: yaml: %v", err))
	}
	return &rendered{json: append(j, '\n'), yaml: y}
})

// JSON returns the document as JSON.
func JSON() []byte { return current().json }

// YAML returns the document as YAML, keys in the same order as the JSON.
func YAML() []byte { return current().yaml }

// toYAML re-encodes JSON as block-style YAML. JSON is YAML, so it decodes into a node
// tree that keeps the key order; clearing the flow and quoting styles makes it block
// style, and the encoder quotes whatever would otherwise read back as another type
// (such as the status code keys "200").
func toYAML(j []byte) ([]byte, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return nil, err
	}
	var clear func(*yaml.Node)
	clear = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			clear(c)
		}
	}
	clear(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
