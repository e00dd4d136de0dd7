package cvtest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/pion/opus/pkg/oggreader"
)

// OggOpusPackets returns the audio packets of the Ogg Opus file at path
// (the OpusHead and OpusTags headers left out).
func OggOpusPackets(t testing.TB, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out [][]byte
	for {
		p, _, err := r.ParseNextPacket()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !bytes.HasPrefix(p, []byte("OpusHead")) && !bytes.HasPrefix(p, []byte("OpusTags")) {
			out = append(out, bytes.Clone(p))
		}
	}
}
