package matrix

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLimitedBody(t *testing.T) {
	for _, tc := range []struct {
		body    string
		limit   int64
		wantErr bool
	}{
		{"", 4, false},
		{"abc", 4, false},
		{"abcd", 4, false},
		{"abcde", 4, true},
		{strings.Repeat("x", 10000), 9999, true},
		{strings.Repeat("x", 10000), 10000, false},
	} {
		got, err := io.ReadAll(&limitedBody{r: io.NopCloser(strings.NewReader(tc.body)), left: tc.limit})
		if tc.wantErr {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("%d bytes, limit %d: err = %v, want ErrTooLarge", len(tc.body), tc.limit, err)
			}
			if int64(len(got)) > tc.limit {
				t.Errorf("%d bytes, limit %d: read %d bytes, past the limit", len(tc.body), tc.limit, len(got))
			}
			continue
		}
		if err != nil || string(got) != tc.body {
			t.Errorf("%d bytes, limit %d: got %d bytes, err %v", len(tc.body), tc.limit, len(got), err)
		}
	}
}
