package export

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

const testChunk = 64 // small chunks, so that a few hundred bytes cross many boundaries

func testKey(t testing.TB) *MasterKey {
	t.Helper()
	var raw [32]byte
	rand.Read(raw[:])
	mk, err := ParseMasterKey(base64.StdEncoding.EncodeToString(raw[:]))
	if err != nil {
		t.Fatal(err)
	}
	return mk
}

// seal encrypts plain in pieces of varying size (so that writes straddle chunks).
func seal(t testing.TB, mk *MasterKey, bind string, plain []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, mk, bind, testChunk)
	if err != nil {
		t.Fatal(err)
	}
	for i, step := 0, 1; i < len(plain); step = step%97 + 13 {
		end := min(i+step, len(plain))
		if n, err := w.Write(plain[i:end]); err != nil || n != end-i {
			t.Fatalf("write: %d, %v", n, err)
		}
		i = end
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Size() != int64(len(plain)) {
		t.Fatalf("Size %d, want %d", w.Size(), len(plain))
	}
	return buf.Bytes()
}

// open decrypts sealed, returning what the reader handed out before any error.
func open(mk *MasterKey, bind string, sealed []byte) ([]byte, error) {
	r, err := NewReader(bytes.NewReader(sealed), mk, bind)
	if err != nil {
		return nil, err
	}
	var out []byte
	buf := make([]byte, 7) // odd-sized reads
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// chunkStarts are the offsets of each sealed chunk in a container of n plaintext bytes.
func chunkStarts(n int) []int {
	var out []int
	off := HeaderSize
	for full := n / testChunk; full > 0; full-- {
		out = append(out, off)
		off += testChunk + tagSize
	}
	return append(out, off) // the short last chunk
}

func TestContainerRoundTrip(t *testing.T) {
	mk := testKey(t)
	for _, n := range []int{0, 1, testChunk - 1, testChunk, testChunk + 1, 2*testChunk - 1, 2 * testChunk, 2*testChunk + 1, 5 * testChunk, 1000} {
		plain := pattern(n)
		sealed := seal(t, mk, "b", plain)
		wantLen := HeaderSize + (n/testChunk+1)*tagSize + n
		if len(sealed) != wantLen {
			t.Errorf("%d bytes: sealed into %d, want %d", n, len(sealed), wantLen)
		}
		got, err := open(mk, "b", sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Errorf("%d bytes: read back %d bytes, %v", n, len(got), err)
		}
		size, err := Verify(bytes.NewReader(sealed), mk, "b")
		if err != nil || size != int64(n) {
			t.Errorf("%d bytes: Verify = %d, %v", n, size, err)
		}
	}
}

func TestContainerDefaultChunkSize(t *testing.T) {
	mk := testKey(t)
	plain := pattern(3*DefaultChunkSize + 5)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, mk, "b", 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := open(mk, "b", buf.Bytes())
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("read back %d of %d bytes: %v", len(got), len(plain), err)
	}
	for _, bad := range []int{-1, MaxChunkSize + 1} {
		if _, err := NewWriter(io.Discard, mk, "b", bad); err == nil {
			t.Errorf("chunk size %d accepted", bad)
		}
	}
}

// TestContainerHoldsNoPlaintext: neither the text nor its key is in the file.
func TestContainerHoldsNoPlaintext(t *testing.T) {
	mk := testKey(t)
	secret := strings.Repeat("the quarterly numbers are bad ", 20)
	a := seal(t, mk, "b", []byte(secret))
	b := seal(t, mk, "b", []byte(secret))
	for _, probe := range []string{"quarterly", "numbers"} {
		if bytes.Contains(a, []byte(probe)) {
			t.Errorf("sealed file contains %q", probe)
		}
	}
	if bytes.Equal(a[HeaderSize:], b[HeaderSize:]) {
		t.Error("the same plaintext sealed twice gives the same ciphertext: the file key is not fresh")
	}
}

// damaged checks that opening sealed fails with ErrIntegrity and hands out at most the
// plaintext of the chunks before firstBad (never a byte of a chunk that failed).
func damaged(t *testing.T, what string, mk *MasterKey, bind string, sealed, plain []byte, firstBad int) {
	t.Helper()
	got, err := open(mk, bind, sealed)
	if !errors.Is(err, ErrIntegrity) {
		t.Errorf("%s: err = %v, want ErrIntegrity", what, err)
	}
	if len(got) > firstBad*testChunk || !bytes.Equal(got, plain[:len(got)]) {
		t.Errorf("%s: handed out %d bytes, at most %d allowed", what, len(got), firstBad*testChunk)
	}
	if _, err := Verify(bytes.NewReader(sealed), mk, bind); !errors.Is(err, ErrIntegrity) {
		t.Errorf("%s: Verify = %v, want ErrIntegrity", what, err)
	}
}

func TestContainerDetectsFlippedByte(t *testing.T) {
	mk := testKey(t)
	plain := pattern(5*testChunk + 10)
	sealed := seal(t, mk, "b", plain)
	starts := chunkStarts(len(plain))
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 0x20
		chunk := 0 // which chunk the flipped byte is in (header: 0)
		for c, s := range starts {
			if i >= s {
				chunk = c
			}
		}
		damaged(t, fmt.Sprintf("byte %d flipped", i), mk, "b", bad, plain, chunk)
	}
}

func TestContainerDetectsTruncation(t *testing.T) {
	mk := testKey(t)
	for _, n := range []int{0, testChunk, 3 * testChunk, 3*testChunk + 10} {
		plain := pattern(n)
		sealed := seal(t, mk, "b", plain)
		// Cut at every chunk boundary, and at every byte for good measure.
		for _, s := range chunkStarts(n) {
			damaged(t, fmt.Sprintf("%d bytes cut at chunk boundary %d", n, s), mk, "b", sealed[:s], plain, n/testChunk)
		}
		for cut := range len(sealed) {
			damaged(t, fmt.Sprintf("%d bytes cut to %d", n, cut), mk, "b", sealed[:cut], plain, n/testChunk)
		}
		damaged(t, fmt.Sprintf("%d bytes with a byte appended", n), mk, "b", append(bytes.Clone(sealed), 0), plain, n/testChunk)
	}
}

func TestContainerDetectsReorderedChunks(t *testing.T) {
	mk := testKey(t)
	plain := pattern(4*testChunk + 3)
	sealed := seal(t, mk, "b", plain)
	s := chunkStarts(len(plain))
	c1, c2 := sealed[s[1]:s[2]], sealed[s[2]:s[3]]

	swapped := bytes.Clone(sealed)
	copy(swapped[s[1]:], c2)
	copy(swapped[s[2]:], c1)
	damaged(t, "chunks 1 and 2 swapped", mk, "b", swapped, plain, 1)

	repeated := bytes.Clone(sealed)
	copy(repeated[s[2]:], c1)
	damaged(t, "chunk 1 repeated over chunk 2", mk, "b", repeated, plain, 2)

	dropped := append(bytes.Clone(sealed[:s[1]]), sealed[s[2]:]...)
	damaged(t, "chunk 1 dropped", mk, "b", dropped, plain, 1)

	// The last chunk of one file after the full chunks of another, same key: no.
	other := seal(t, mk, "b", pattern(4*testChunk+3))
	spliced := append(bytes.Clone(sealed[:s[4]]), other[s[4]:]...)
	damaged(t, "last chunk from another file", mk, "b", spliced, plain, 4)
}

func TestContainerWrongKeyOrBinding(t *testing.T) {
	mk := testKey(t)
	plain := pattern(200)
	sealed := seal(t, mk, "export-1 json", plain)
	if _, err := open(testKey(t), "export-1 json", sealed); !errors.Is(err, ErrIntegrity) || !strings.Contains(err.Error(), "master key") {
		t.Errorf("another master key: %v, want ErrIntegrity naming the master key", err)
	}
	// Same id, different key bytes (an id collision or a forged id): the unwrap fails.
	forged := testKey(t)
	forged.id = mk.id
	damaged(t, "forged key id", forged, "export-1 json", sealed, plain, 0)
	// The file of another export, or its other file, copied into place.
	damaged(t, "another binding", mk, "export-2 json", sealed, plain, 0)
	damaged(t, "not a container", mk, "b", []byte(strings.Repeat("{\"room_id\": 1}", 10)), plain, 0)
}
