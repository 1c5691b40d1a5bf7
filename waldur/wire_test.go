package waldur

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"matrixas/internal/fakewaldur"
)

// TestWireFieldsExist checks every field the client decodes or selects against the
// API description's schema: the client reads nothing the platform does not have.
func TestWireFieldsExist(t *testing.T) {
	for _, tc := range []struct {
		schema string
		wire   any
		fields []string // field= selections sent
	}{
		{"Customer", wireCustomer{}, customerFields},
		{"Project", wireProject{}, projectFields},
		{"User", wireUser{}, userFields},
		{"Permission", wirePermission{}, nil},
		{"UserRoleDetails", wireScopeRole{}, scopeRoleField},
		{"Resource", wireResource{}, resourceFields},
		{"OrderDetails", wireOrder{}, orderFields},
		{"WebHook", wireHook{}, nil},
	} {
		props, err := fakewaldur.Properties(tc.schema)
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(tc.wire)
		var tags []string
		for i := range typ.NumField() {
			tag, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			tags = append(tags, tag)
			if !slices.Contains(props, tag) {
				t.Errorf("%s reads %q, which %s does not have", typ.Name(), tag, tc.schema)
			}
		}
		for _, f := range tc.fields {
			if !slices.Contains(tags, f) {
				t.Errorf("%s selects %q but does not read it", typ.Name(), f)
			}
		}
	}
}
