package export

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The container is the encrypted form of every export file (the JSON document and the
// media ZIP). Layout, all integers big-endian:
//
//	offset size
//	 0      8   magic "MXASEXP" + format version 0x01
//	 8      4   plaintext bytes per chunk (1 .. MaxChunkSize)
//	12      8   id of the master key that wrapped the file key (KeyID)
//	20      7   nonce prefix, random per file
//	27     12   nonce of the key wrap, random per file
//	39     48   the file key (32 random bytes) sealed with AES-256-GCM under the master
//	            key, nonce above, additional data = bytes 0..38 + the binding
//	87          chunks
//
// Each chunk is AES-256-GCM under the file key with the 12-byte nonce
// prefix(7) || counter(4) || last(1) (last is 1 on the final chunk, else 0) and the
// additional data header(87 bytes) || binding. Every chunk but the last holds exactly the
// chunk size of plaintext; the last holds strictly less (possibly nothing), so a reader
// knows the last chunk by its short length and a file cut at a chunk boundary lacks it.
// This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015): the counter
// makes reordering fail, the last flag makes truncation fail, the header in every chunk's
// additional data makes any header change fail, and the binding (the export's uuid and
// which of its files this is) makes a file copied over another export's file fail.
const (
	magic = "MXASEXP\x01"
	// HeaderSize is the length of a container's header.
	HeaderSize = 87
	// DefaultChunkSize is the plaintext bytes per chunk: large enough that the 16-byte tag
	// costs 0.02 %, small enough that a reader holds little in memory.
	DefaultChunkSize = 64 << 10
	// MaxChunkSize bounds the chunk size a header may declare, so that a forged header
	// cannot make a reader allocate without bound.
	MaxChunkSize = 16 << 20

	prefixSize  = 7
	tagSize     = 16
	keySize     = 32
	wrappedSize = keySize + tagSize
)

// ErrIntegrity is a container that fails its integrity check: modified, truncated,
// reordered, bound to another export, or encrypted under another master key. No plaintext
// of a chunk that fails is ever returned.
var ErrIntegrity = errors.New("export: file failed its integrity check")

func integrity(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIntegrity}, args...)...)
}

// Writer encrypts a stream into the container format. Close writes the final chunk:
// a stream that was never closed is not a valid container, which is what a crash
// mid-export must leave.
type Writer struct {
	w       io.Writer
	aead    cipher.AEAD
	ad      []byte
	nonce   [12]byte
	counter uint32
	buf     []byte // plaintext of the chunk being filled, cap = chunk size
	out     []byte // sealed chunk scratch space
	written int64  // plaintext bytes accepted
	err     error
	closed  bool
}

// NewWriter writes a container header to w and returns a Writer that encrypts what is
// written to it under a new random file key wrapped by mk. binding ties the file to its
// place (for example the export's uuid and "json"); a reader must give the same one.
// chunkSize 0 means DefaultChunkSize.
func NewWriter(w io.Writer, mk *MasterKey, binding string, chunkSize int) (*Writer, error) {
	if chunkSize == 0 {
		chunkSize = DefaultChunkSize
	}
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("export: chunk size %d out of range 1..%d", chunkSize, MaxChunkSize)
	}
	var fileKey [keySize]byte
	header := make([]byte, HeaderSize, HeaderSize+len(binding))
	copy(header, magic)
	binary.BigEndian.PutUint32(header[8:12], uint32(chunkSize))
	copy(header[12:20], mk.id[:])
	if _, err := rand.Read(fileKey[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(header[20:39]); err != nil { // nonce prefix and wrap nonce
		return nil, err
	}
	ad := append(header[:39:39], binding...)
	mk.aead.Seal(header[39:39], header[27:39], fileKey[:], ad)
	aead, err := newGCM(fileKey[:])
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(header); err != nil {
		return nil, err
	}
	cw := &Writer{
		w:    w,
		aead: aead,
		ad:   append(header, binding...),
		buf:  make([]byte, 0, chunkSize),
		out:  make([]byte, 0, chunkSize+tagSize),
	}
	copy(cw.nonce[:prefixSize], header[20:27])
	return cw, nil
}

// Write encrypts p, sealing and writing each chunk as soon as it is full.
func (cw *Writer) Write(p []byte) (int, error) {
	if cw.closed {
		return 0, errors.New("export: write after close")
	}
	if cw.err != nil {
		return 0, cw.err
	}
	n := 0
	for len(p) > 0 {
		k := copy(cw.buf[len(cw.buf):cap(cw.buf)], p)
		cw.buf = cw.buf[:len(cw.buf)+k]
		p = p[k:]
		n += k
		if len(cw.buf) == cap(cw.buf) {
			// A full chunk is never the last one (the last is always short), so it can
			// go out now.
			if err := cw.seal(false); err != nil {
				cw.err = err
				return n, err
			}
		}
	}
	cw.written += int64(n)
	return n, nil
}

// Close seals the final (short, possibly empty) chunk. It does not close the underlying
// writer.
func (cw *Writer) Close() error {
	if cw.closed {
		return cw.err
	}
	cw.closed = true
	if cw.err != nil {
		return cw.err
	}
	cw.err = cw.seal(true)
	return cw.err
}

// Size is the plaintext bytes written so far.
func (cw *Writer) Size() int64 { return cw.written }

func (cw *Writer) seal(last bool) error {
	if cw.counter == ^uint32(0) {
		return errors.New("export: file too large for its chunk size")
	}
	binary.BigEndian.PutUint32(cw.nonce[prefixSize:prefixSize+4], cw.counter)
	cw.nonce[11] = 0
	if last {
		cw.nonce[11] = 1
	}
	cw.out = cw.aead.Seal(cw.out[:0], cw.nonce[:], cw.buf, cw.ad)
	cw.counter++
	cw.buf = cw.buf[:0]
	_, err := cw.w.Write(cw.out)
	return err
}

// Reader decrypts a container, returning each chunk's plaintext only after the chunk has
// been authenticated. Any failure is ErrIntegrity (or the underlying reader's error), and
// it sticks: a Reader never yields more after one.
type Reader struct {
	r       io.Reader
	aead    cipher.AEAD
	ad      []byte
	nonce   [12]byte
	counter uint32
	in      []byte // sealed chunk buffer, cap = chunk size + tag
	plain   []byte // authenticated plaintext not yet returned
	done    bool   // the final chunk has been read
	err     error
}

// NewReader reads and checks r's header, unwraps the file key with mk and returns a
// Reader of the plaintext. A header that is not a container, a different binding, or a
// key that cannot be unwrapped is ErrIntegrity.
func NewReader(r io.Reader, mk *MasterKey, binding string) (*Reader, error) {
	header := make([]byte, HeaderSize, HeaderSize+len(binding))
	if _, err := io.ReadFull(r, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, integrity("shorter than its header")
		}
		return nil, err
	}
	if !bytes.Equal(header[:8], []byte(magic)) {
		return nil, integrity("not an export container")
	}
	chunkSize := binary.BigEndian.Uint32(header[8:12])
	if chunkSize < 1 || chunkSize > MaxChunkSize {
		return nil, integrity("chunk size %d out of range", chunkSize)
	}
	if !bytes.Equal(header[12:20], mk.id[:]) {
		return nil, integrity("encrypted under master key %x, this server's is %s", header[12:20], mk.ID())
	}
	ad := append(header[:39:39], binding...)
	fileKey, err := mk.aead.Open(nil, header[27:39], header[39:HeaderSize], ad)
	if err != nil {
		return nil, integrity("file key does not unwrap (modified header, or another export's file)")
	}
	aead, err := newGCM(fileKey)
	if err != nil {
		return nil, err
	}
	cr := &Reader{
		r:    r,
		aead: aead,
		ad:   append(header, binding...),
		in:   make([]byte, int(chunkSize)+tagSize),
	}
	copy(cr.nonce[:prefixSize], header[20:27])
	return cr, nil
}

// Read returns authenticated plaintext. io.EOF comes only after the final chunk
// authenticated.
func (cr *Reader) Read(p []byte) (int, error) {
	for len(cr.plain) == 0 {
		if cr.err != nil {
			return 0, cr.err
		}
		if cr.done {
			return 0, io.EOF
		}
		cr.err = cr.next()
	}
	n := copy(p, cr.plain)
	cr.plain = cr.plain[n:]
	return n, nil
}

// next reads and opens one chunk into cr.plain.
func (cr *Reader) next() error {
	n, err := io.ReadFull(cr.r, cr.in)
	last := false
	switch {
	case err == nil: // a full chunk: never the last one
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		if n < tagSize {
			return integrity("truncated after chunk %d", cr.counter)
		}
		last = true
	default:
		return err
	}
	binary.BigEndian.PutUint32(cr.nonce[prefixSize:prefixSize+4], cr.counter)
	cr.nonce[11] = 0
	if last {
		cr.nonce[11] = 1
	}
	plain, err := cr.aead.Open(cr.in[:0], cr.nonce[:], cr.in[:n], cr.ad)
	if err != nil {
		return integrity("chunk %d fails authentication", cr.counter)
	}
	if cr.counter == ^uint32(0) {
		return integrity("too many chunks")
	}
	cr.counter++
	cr.plain = plain
	cr.done = last
	return nil
}

// Verify reads the whole container from r and reports whether it is intact, returning
// the plaintext size. It keeps one chunk in memory, so it is cheap enough to run before
// every download: a file that fails is answered 409 before any byte is sent.
func Verify(r io.Reader, mk *MasterKey, binding string) (int64, error) {
	cr, err := NewReader(r, mk, binding)
	if err != nil {
		return 0, err
	}
	var size int64
	for {
		if cr.err == nil && len(cr.plain) == 0 && !cr.done {
			cr.err = cr.next()
		}
		if cr.err != nil {
			return 0, cr.err
		}
		size += int64(len(cr.plain))
		cr.plain = nil
		if cr.done {
			return size, nil
		}
	}
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
