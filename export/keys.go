package export

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Env var names of the master key, for messages (the config integration reads them).
const (
	EnvKey     = "EXPORT_ENCRYPTION_KEY"
	EnvKeyFile = "EXPORT_ENCRYPTION_KEY_FILE"
)

// KeyFileName is the file beside the database that holds the generated master key when
// no key is configured.
const KeyFileName = "export-encryption.key"

// MasterKey is the key that wraps each export file's own key. It never leaves the
// process: not in the database, not in a log (its String is its id).
type MasterKey struct {
	aead cipher.AEAD
	id   [8]byte
}

// ParseMasterKey decodes a master key: exactly 32 bytes in standard base64 with padding
// (44 characters, as `openssl rand -base64 32` prints), surrounding white space ignored.
// The error says what is wrong without repeating the value.
func ParseMasterKey(s string) (*MasterKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("is empty; want 32 random bytes in base64 (openssl rand -base64 32)")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("is not standard base64; want 32 random bytes in base64 (openssl rand -base64 32)")
	}
	if len(raw) != keySize {
		return nil, fmt.Errorf("decodes to %d bytes; want exactly 32 bytes in base64 (openssl rand -base64 32)", len(raw))
	}
	return newMasterKey(raw)
}

func newMasterKey(raw []byte) (*MasterKey, error) {
	aead, err := newGCM(raw)
	if err != nil {
		return nil, err
	}
	mk := &MasterKey{aead: aead}
	// The id tells a file wrapped under another key from a damaged one, without saying
	// anything about the key itself.
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("matrixas export master key id"))
	copy(mk.id[:], mac.Sum(nil))
	return mk, nil
}

// ID is the key's public fingerprint (16 hex digits), stored with each export so that a
// file wrapped under an older key is recognised as such.
func (mk *MasterKey) ID() string { return hex.EncodeToString(mk.id[:]) }

// String is the key's id, so that printing a MasterKey never prints the key.
func (mk *MasterKey) String() string { return "export master key " + mk.ID() }

// KeySource says where LoadMasterKey found the key, for the start-up log.
type KeySource string

// Where a master key comes from.
const (
	KeyFromEnv       KeySource = EnvKey
	KeyFromFile      KeySource = EnvKeyFile
	KeyGenerated     KeySource = "generated"      // created now beside the database
	KeyFromGenerated KeySource = "generated file" // created by an earlier start
)

// LoadMasterKey resolves the master key from the configured values: value
// (EXPORT_ENCRYPTION_KEY), else the file at file (EXPORT_ENCRYPTION_KEY_FILE), else the
// key file at generatedPath, created on first use (see LoadOrCreateKeyFile). Setting
// both value and file is an error, as for every *_FILE secret.
func LoadMasterKey(value, file, generatedPath string) (*MasterKey, KeySource, error) {
	switch {
	case value != "" && file != "":
		return nil, "", fmt.Errorf("%s and %s: set one of the two, not both", EnvKey, EnvKeyFile)
	case value != "":
		mk, err := ParseMasterKey(value)
		if err != nil {
			return nil, "", fmt.Errorf("%s %w", EnvKey, err)
		}
		return mk, KeyFromEnv, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", EnvKeyFile, err)
		}
		mk, err := ParseMasterKey(string(b))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %s %w", EnvKeyFile, file, err)
		}
		return mk, KeyFromFile, nil
	}
	mk, created, err := LoadOrCreateKeyFile(generatedPath)
	if err != nil {
		return nil, "", err
	}
	if created {
		return mk, KeyGenerated, nil
	}
	return mk, KeyFromGenerated, nil
}

// DefaultKeyPath is where the generated master key lives: beside the database file, so
// that it sits on the same volume but never in the database (a database backup alone
// does not open the exports).
func DefaultKeyPath(databasePath string) string {
	return filepath.Join(filepath.Dir(databasePath), KeyFileName)
}

// LoadOrCreateKeyFile reads the master key at path, or, when there is no file, generates
// one and writes it there (mode 0600, base64 and a newline). The file appears complete
// or not at all: it is written and synced under a temporary name and then linked into
// place, and link fails when another process created the key meanwhile, whose key is
// then read and used. created reports whether this call wrote the file.
func LoadOrCreateKeyFile(path string) (mk *MasterKey, created bool, err error) {
	if path == "" {
		return nil, false, errors.New("export: no path for the generated master key")
	}
	if mk, err := readKeyFile(path); !errors.Is(err, fs.ErrNotExist) {
		return mk, false, err
	}
	var raw [keySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, fmt.Errorf("export: create folder for the master key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("export: write master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(raw[:]) + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, false, fmt.Errorf("export: write master key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race: use its key
			mk, err := readKeyFile(path)
			return mk, false, err
		}
		return nil, false, fmt.Errorf("export: write master key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, false, fmt.Errorf("export: write master key: %w", err)
	}
	mk, err = newMasterKey(raw[:])
	return mk, true, err
}

func readKeyFile(path string) (*MasterKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("export: read master key: %w", err)
	}
	mk, err := ParseMasterKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("export: master key file %s %w", path, err)
	}
	return mk, nil
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
