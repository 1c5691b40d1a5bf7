package fakewaldur

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMadeUpFieldsFailTheCheck: the fake cannot answer a field the description does
// not have (object schemas refuse other properties), nor a wrong type.
func TestMadeUpFieldsFailTheCheck(t *testing.T) {
	sp, err := loadSpec()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/projects/", nil)
	rt, params := sp.match(req.URL.Path)
	op := rt.item.GetOperation(http.MethodGet)
	in, err := sp.validateRequest(context.Background(), req, rt, op, params)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}, "X-Result-Count": {"1"}}
	for _, tc := range []struct {
		body, want string
	}{
		{`[{"uuid": "0123456789abcdef0123456789abcdef", "name": "x"}]`, ""},
		{`[{"uuid": "0123456789abcdef0123456789abcdef", "made_up": 1}]`, "made_up"},
		{`[{"uuid": "0123456789abcdef0123456789abcdef", "is_removed": "no"}]`, "is_removed"},
		{`[{"uuid": "0123456789abcdef0123456789abcdef", "customer": "/relative/"}]`, "customer"},
	} {
		err := sp.validateResponse(context.Background(), in, http.StatusOK, h, []byte(tc.body))
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: err = %v, want one naming %q", tc.body, err, tc.want)
		}
	}
}
