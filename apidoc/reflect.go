package apidoc

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// component is a named schema reflected from a Go value's type.
type component struct {
	name  string
	value any
}

// reflector builds schemas from Go types: every registered type becomes a $ref to its
// component, everything else is inlined.
type reflector struct {
	names map[reflect.Type]string
}

// reflectComponents builds one schema per component. adjust maps "Component" or
// "Component.field" (or "Component.field.sub" inside an inline object) to an edit that
// adds what reflection cannot know; an edit whose target does not exist is an error, so
// a renamed field cannot leave a stale description behind.
func reflectComponents(list []component, adjust map[string]func(*Schema)) (map[string]*Schema, error) {
	r := &reflector{names: map[reflect.Type]string{}}
	for _, c := range list {
		t := reflect.TypeOf(c.value)
		if prev, dup := r.names[t]; dup {
			return nil, fmt.Errorf("apidoc: type %s registered as both %s and %s", t, prev, c.name)
		}
		r.names[t] = c.name
	}
	out := map[string]*Schema{}
	used := map[string]bool{}
	for _, c := range list {
		s, err := r.schema(reflect.TypeOf(c.value), true)
		if err != nil {
			return nil, fmt.Errorf("apidoc: %s: %w", c.name, err)
		}
		applyAdjust(c.name, s, adjust, used)
		out[c.name] = s
	}
	var stale []string
	for k := range adjust {
		if !used[k] {
			stale = append(stale, k)
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return nil, fmt.Errorf("apidoc: adjustments for fields that do not exist: %s", strings.Join(stale, ", "))
	}
	return out, nil
}

// applyAdjust runs the edits for path and, depth first, for its inline properties.
func applyAdjust(path string, s *Schema, adjust map[string]func(*Schema), used map[string]bool) {
	if f, ok := adjust[path]; ok {
		f(s)
		used[path] = true
	}
	for name, p := range s.Properties {
		if p.Ref == "" {
			applyAdjust(path+"."+name, p, adjust, used)
		}
	}
}

// schema returns t's schema; top is true when t is being defined as its own component.
func (r *reflector) schema(t reflect.Type, top bool) (*Schema, error) {
	if name, ok := r.names[t]; ok && !top {
		return &Schema{Ref: "#/components/schemas/" + name}, nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		s, err := r.schema(t.Elem(), false)
		if err != nil {
			return nil, err
		}
		if s.Ref != "" {
			// OpenAPI 3.0 ignores siblings of $ref, so "nullable" could not be said.
			return nil, fmt.Errorf("pointer to component %s: nullable references are not supported", t.Elem())
		}
		s.Nullable = true
		return s, nil
	case reflect.String:
		return &Schema{Type: "string"}, nil
	case reflect.Bool:
		return &Schema{Type: "boolean"}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return &Schema{Type: "integer"}, nil
	case reflect.Int64, reflect.Uint64:
		return &Schema{Type: "integer", Format: "int64"}, nil
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: "number"}, nil
	case reflect.Slice, reflect.Array:
		items, err := r.schema(t.Elem(), false)
		if err != nil {
			return nil, err
		}
		return &Schema{Type: "array", Items: items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key %s: JSON object keys are strings", t.Key())
		}
		v, err := r.schema(t.Elem(), false)
		if err != nil {
			return nil, err
		}
		return &Schema{Type: "object", AdditionalProperties: v}, nil
	case reflect.Struct:
		s := &Schema{Type: "object", Properties: map[string]*Schema{}}
		if err := r.fields(t, s); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("type %s has no JSON schema mapping", t)
}

// fields adds t's JSON fields to s, flattening embedded structs as encoding/json does.
func (r *reflector) fields(t reflect.Type, s *Schema) error {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			if err := r.fields(f.Type, s); err != nil {
				return err
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		p, err := r.schema(f.Type, false)
		if err != nil {
			return fmt.Errorf("field %s: %w", f.Name, err)
		}
		s.Properties[name] = p
		if !hasOpt(opts, "omitempty") && !hasOpt(opts, "omitzero") {
			s.Required = append(s.Required, name)
		}
	}
	return nil
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}
