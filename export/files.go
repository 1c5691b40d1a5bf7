package export

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File kinds: which of an export's two files; part of the file name and of the binding
// that ties the encrypted file to its export.
const (
	KindJSON  = "json"
	KindMedia = "media"
)

// DirName is the export folder's name beside the database when none is configured.
const DirName = "exports"

// DefaultDir is the export folder when EXPORT_DIR is not set: beside the database.
func DefaultDir(databasePath string) string {
	return filepath.Join(filepath.Dir(databasePath), DirName)
}

// tmpMarker is in the name of every file still being written, so that recovery can
// delete what a crash left behind and nothing else.
const tmpMarker = ".partial-"

// FileName is the name, inside the export folder, of an export's file of the given kind.
func FileName(exportUUID, kind string) string {
	switch kind {
	case KindMedia:
		return exportUUID + "-media.zip.enc"
	default:
		return exportUUID + ".json.enc"
	}
}

func binding(exportUUID, kind string) string {
	return "matrixas history export " + exportUUID + " " + kind
}

// validName keeps a stored file name inside the export folder.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) &&
		!strings.Contains(name, tmpMarker)
}

// sealedFile is an export file being written: encrypted, buffered, under a temporary
// name until commit renames it.
type sealedFile struct {
	f     *os.File
	bw    *bufio.Writer
	cw    *Writer
	dir   string
	name  string
	count countingWriter
}

// createSealed starts writing the encrypted file name in dir under a temporary name.
func createSealed(dir, name string, mk *MasterKey, bind string, chunkSize int) (*sealedFile, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("export: create folder %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, "."+name+tmpMarker+"*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("export: create file: %w", err)
	}
	s := &sealedFile{f: f, dir: dir, name: name}
	s.count.w = f
	s.bw = bufio.NewWriterSize(&s.count, 64<<10)
	s.cw, err = NewWriter(s.bw, mk, bind, chunkSize)
	if err != nil {
		s.abort()
		return nil, err
	}
	return s, nil
}

// Write encrypts p into the file.
func (s *sealedFile) Write(p []byte) (int, error) { return s.cw.Write(p) }

// commit seals the last chunk, syncs the file, renames it to its final name and syncs
// the folder: only then does a file with that name exist, and it is complete.
func (s *sealedFile) commit() error {
	err := s.cw.Close()
	if err == nil {
		err = s.bw.Flush()
	}
	if err == nil {
		err = s.f.Sync()
	}
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(s.f.Name(), filepath.Join(s.dir, s.name))
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		os.Remove(s.f.Name())
		return fmt.Errorf("export: write %s: %w", s.name, err)
	}
	return nil
}

// abort removes the unfinished file.
func (s *sealedFile) abort() {
	s.f.Close()
	os.Remove(s.f.Name())
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// RemoveUnfinished deletes the files a crash left half-written in dir (never a
// complete export file) and returns how many it deleted. Run it at start, before any
// export runs.
func RemoveUnfinished(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("export: list %s: %w", dir, err)
	}
	n := 0
	for _, e := range entries {
		if e.Type().IsRegular() && strings.Contains(e.Name(), tmpMarker) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return n, fmt.Errorf("export: remove unfinished file: %w", err)
			}
			n++
		}
	}
	return n, nil
}

// RemoveFiles deletes the files of the export exportUUID (retention, deletion): both
// names an export can have, whether or not its record lists them, since a run that a
// crash interrupted after renaming may have left a complete file its record never got.
// Files already gone are not an error.
func RemoveFiles(dir, exportUUID string) error {
	if !validName(exportUUID) {
		return fmt.Errorf("export: invalid export uuid %q", exportUUID)
	}
	for _, kind := range []string{KindJSON, KindMedia} {
		name := FileName(exportUUID, kind)
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("export: remove %s: %w", name, err)
		}
	}
	return nil
}

// Plaintext is a verified export file open for download: Size is known before the
// first byte (Content-Length) and Read yields only authenticated plaintext.
type Plaintext struct {
	// Size is the plaintext length in bytes.
	Size int64
	f    *os.File
	r    *Reader
}

// Read reads decrypted bytes. Should the file change on disk after the check (it is
// read from the same open descriptor, so a rename over it does not count), the change
// is ErrIntegrity mid-stream and nothing unauthenticated is returned.
func (p *Plaintext) Read(b []byte) (int, error) { return p.r.Read(b) }

// Close closes the file.
func (p *Plaintext) Close() error { return p.f.Close() }

// Open opens the export file name of the export exportUUID (kind KindJSON or KindMedia)
// in dir, checks the whole file's integrity in one pass, and returns it positioned at
// the start for streaming. A file that fails is ErrIntegrity before any plaintext is
// handed out (the API answers 409); a missing file is fs.ErrNotExist.
func Open(dir, name string, mk *MasterKey, exportUUID, kind string) (*Plaintext, error) {
	if !validName(name) {
		return nil, fmt.Errorf("export: invalid file name %q: %w", name, fs.ErrNotExist)
	}
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("export: open %s: %w", name, err)
	}
	bind := binding(exportUUID, kind)
	size, err := Verify(bufio.NewReaderSize(f, 64<<10), mk, bind)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	var r *Reader
	if err == nil {
		r, err = NewReader(bufio.NewReaderSize(f, 64<<10), mk, bind)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("export: open %s: %w", name, err)
	}
	return &Plaintext{Size: size, f: f, r: r}, nil
}
