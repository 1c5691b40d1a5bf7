package export

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestParseMasterKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	for _, tc := range []struct {
		name, in string
		ok       bool
		msg      string
	}{
		{"base64 of 32 bytes", good, true, ""},
		{"with a trailing newline (a key file)", good + "\n", true, ""},
		{"empty", "  \n", false, "is empty"},
		{"unpadded", strings.TrimRight(good, "="), false, "not standard base64"},
		{"url-safe alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16))), false, "not standard base64"},
		{"16 bytes", base64.StdEncoding.EncodeToString(make([]byte, 16)), false, "decodes to 16 bytes"},
		{"64 hex digits", strings.Repeat("ab", 32), false, "decodes to 48 bytes"},
		{"a passphrase", "correct horse battery staple", false, "not standard base64"},
	} {
		mk, err := ParseMasterKey(tc.in)
		if tc.ok {
			if err != nil || mk == nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "32") {
			t.Errorf("%s: error %q, want it to say %q and what a key is", tc.name, err, tc.msg)
		}
		if strings.TrimSpace(tc.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
			t.Errorf("%s: error %q repeats the value", tc.name, err)
		}
	}
	a, _ := ParseMasterKey(good)
	b, _ := ParseMasterKey(good + "\n")
	if a.ID() != b.ID() || len(a.ID()) != 16 || strings.Contains(a.String(), good) {
		t.Errorf("ids %s / %s, String %q", a.ID(), b.ID(), a.String())
	}
}

func TestKeyFileGeneratedOnceAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := DefaultKeyPath(filepath.Join(dir, "matrixas.db"))
	if filepath.Dir(path) != dir {
		t.Fatalf("key path %s is not beside the database", path)
	}
	mk1, created, err := LoadOrCreateKeyFile(path)
	if err != nil || !created {
		t.Fatalf("first load: created=%v, %v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if _, err := ParseMasterKey(string(b)); err != nil || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("key file %q does not hold a base64 key and a newline: %v", b, err)
	}
	sealed := seal(t, mk1, "b", []byte("hello"))

	mk2, created, err := LoadOrCreateKeyFile(path)
	if err != nil || created {
		t.Fatalf("second load: created=%v, %v", created, err)
	}
	if mk2.ID() != mk1.ID() {
		t.Fatalf("second load gave key %s, first %s", mk2.ID(), mk1.ID())
	}
	if got, err := open(mk2, "b", sealed); err != nil || string(got) != "hello" {
		t.Errorf("file sealed under the first load: %q, %v", got, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Error("second load rewrote the key file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only the key file", len(entries))
	}
}

// TestKeyFileCreatedOnceUnderRace: two servers starting at once on the same folder end
// up with the same key, and exactly one of them wrote it.
func TestKeyFileCreatedOnceUnderRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFileName)
	const n = 8
	ids := make([]string, n)
	createdBy := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			mk, created, err := LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], createdBy[i] = mk.ID(), created
		})
	}
	wg.Wait()
	writers := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Errorf("loader %d got key %s, loader 0 %s", i, ids[i], ids[0])
		}
		if createdBy[i] {
			writers++
		}
	}
	if writers != 1 {
		t.Errorf("%d loaders wrote the key file, want 1", writers)
	}
}

func TestLoadMasterKey(t *testing.T) {
	dir := t.TempDir()
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	keyFile := filepath.Join(dir, "secret")
	os.WriteFile(keyFile, []byte(good+"\n"), 0o600)
	badFile := filepath.Join(dir, "bad")
	os.WriteFile(badFile, []byte("short"), 0o600)
	generated := filepath.Join(dir, "gen", KeyFileName)
	fromValue, _ := ParseMasterKey(good)

	for _, tc := range []struct {
		name, value, file string
		source            KeySource
		errHas            string
	}{
		{"value", good, "", KeyFromEnv, ""},
		{"file", "", keyFile, KeyFromFile, ""},
		{"neither: generated", "", "", KeyGenerated, ""},
		{"neither again: the generated file", "", "", KeyFromGenerated, ""},
		{"both", good, keyFile, "", "not both"},
		{"bad value", "short", "", "", EnvKey + " "},
		{"bad file", "", badFile, "", EnvKeyFile},
		{"missing file", "", filepath.Join(dir, "nope"), "", EnvKeyFile},
	} {
		mk, src, err := LoadMasterKey(tc.value, tc.file, generated)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.errHas)
			}
			continue
		}
		if err != nil || src != tc.source {
			t.Errorf("%s: source %q, %v; want %q", tc.name, src, err, tc.source)
			continue
		}
		if (tc.source == KeyFromEnv || tc.source == KeyFromFile) && mk.ID() != fromValue.ID() {
			t.Errorf("%s: key %s, want %s", tc.name, mk.ID(), fromValue.ID())
		}
	}
}
