package apidoc

import (
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	A string `json:"a"`
}

type embedded struct {
	E int `json:"e"`
}

type sample struct {
	embedded
	Name     string            `json:"name"`
	Optional string            `json:"optional,omitempty"`
	When     *string           `json:"when"`
	Count    int64             `json:"count"`
	Ratio    float64           `json:"ratio"`
	Flags    []bool            `json:"flags"`
	Labels   map[string]string `json:"labels"`
	Ref      inner             `json:"ref"`
	Refs     []inner           `json:"refs"`
	Nested   struct {
		X int `json:"x"`
	} `json:"nested"`
	Skipped string `json:"-"`
	NoTag   bool
	_       string // unexported: never encoded
}

func TestReflectComponents(t *testing.T) {
	got, err := reflectComponents([]component{{"Sample", sample{}}, {"Inner", inner{}}}, map[string]func(*Schema){
		"Sample.name":     func(s *Schema) { s.Description = "the name" },
		"Sample.nested.x": func(s *Schema) { s.Description = "deep" },
	})
	if err != nil {
		t.Fatal(err)
	}
	s := got["Sample"]
	props := map[string]string{}
	for name, p := range s.Properties {
		desc := p.Type
		if p.Ref != "" {
			desc = p.Ref
		}
		if p.Nullable {
			desc += " nullable"
		}
		if p.Items != nil {
			desc += " of " + p.Items.Type + p.Items.Ref
		}
		if p.AdditionalProperties != nil {
			desc += " of " + p.AdditionalProperties.Type
		}
		props[name] = desc
	}
	want := map[string]string{
		"e": "integer", "name": "string", "optional": "string", "when": "string nullable", "count": "integer",
		"ratio": "number", "flags": "array of boolean", "labels": "object of string",
		"ref": "#/components/schemas/Inner", "refs": "array of #/components/schemas/Inner", "nested": "object", "NoTag": "boolean",
	}
	if !reflect.DeepEqual(props, want) {
		t.Errorf("properties:\n got %v\nwant %v", props, want)
	}
	wantRequired := []string{"e", "name", "when", "count", "ratio", "flags", "labels", "ref", "refs", "nested", "NoTag"}
	if !reflect.DeepEqual(s.Required, wantRequired) {
		t.Errorf("required %v, want %v (omitempty fields are optional)", s.Required, wantRequired)
	}
	if s.Properties["name"].Description != "the name" || s.Properties["nested"].Properties["x"].Description != "deep" {
		t.Error("adjustments were not applied")
	}
	if s.Properties["count"].Format != "int64" {
		t.Error("int64 without format int64")
	}
}

func TestReflectComponentsErrors(t *testing.T) {
	type withChan struct {
		C chan int `json:"c"`
	}
	type nullableRef struct {
		P *inner `json:"p"`
	}
	tests := []struct {
		name   string
		list   []component
		adjust map[string]func(*Schema)
		want   string
	}{
		{"stale adjustment", []component{{"Inner", inner{}}}, map[string]func(*Schema){"Inner.gone": func(*Schema) {}}, "Inner.gone"},
		{"unmappable type", []component{{"C", withChan{}}}, nil, "no JSON schema mapping"},
		{"nullable reference", []component{{"Inner", inner{}}, {"N", nullableRef{}}}, nil, "nullable references"},
		{"one type, two names", []component{{"A", inner{}}, {"B", inner{}}}, nil, "registered as both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := reflectComponents(tt.list, tt.adjust)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestBuildDoesNotPanic builds the whole document (a broken definition panics).
func TestBuildDoesNotPanic(t *testing.T) {
	doc := Build()
	if len(doc.Paths) == 0 || len(doc.Components.Schemas) == 0 {
		t.Fatal("empty document")
	}
	for path, item := range doc.Paths {
		for _, m := range []string{"GET", "PUT", "POST", "DELETE", "PATCH"} {
			op := item.Operation(m)
			if op == nil {
				continue
			}
			for code, r := range op.Responses {
				if r.Ref == "" && r.Description == "" {
					t.Errorf("%s %s: response %s has no description", m, path, code)
				}
			}
		}
	}
}
