//go:build cgo

package audio_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/callvault/callvault/audio"
)

// spandspTool is a C program around spandsp's G.722 codec: "enc" turns
// PCM16 at 16 kHz on stdin into G.722, "dec16" and "dec8" decode G.722
// (dec8 with G722_SAMPLE_RATE_8000), 160 bytes a call as from RTP.
const spandspTool = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <inttypes.h>
#include <spandsp/telephony.h>
#include <spandsp/g722.h>

int main(int argc, char **argv) {
	size_t cap = 1 << 20, n = 0, r;
	uint8_t *in = malloc(cap);
	while ((r = fread(in + n, 1, cap - n, stdin)) > 0) {
		n += r;
		if (n == cap) in = realloc(in, cap *= 2);
	}
	if (strcmp(argv[1], "enc") == 0) {
		g722_encode_state_t *s = g722_encode_init(NULL, 64000, 0);
		uint8_t *out = malloc(n / 4 + 1);
		int m = g722_encode(s, out, (const int16_t *) in, (int) (n / 2));
		fwrite(out, 1, m, stdout);
		return 0;
	}
	g722_decode_state_t *s = g722_decode_init(NULL, 64000, strcmp(argv[1], "dec8") == 0 ? G722_SAMPLE_RATE_8000 : 0);
	int16_t amp[320];
	for (size_t i = 0; i < n; i += 160) {
		int len = n - i < 160 ? (int) (n - i) : 160;
		int m = g722_decode(s, amp, in + i, len);
		fwrite(amp, 2, m, stdout);
	}
	return 0;
}
`

// spandsp builds the tool, or skips the test if spandsp is not installed
// (and fails under CI=true, where .ci/run installs it).
func spandsp(t *testing.T) func(mode string, in []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "g722.c"), filepath.Join(dir, "g722")
	if err := os.WriteFile(src, []byte(spandspTool), 0o600); err != nil {
		t.Fatal(err)
	}
	cc := "cc"
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cc = strings.Fields(string(out))[0]
	}
	if out, err := exec.Command(cc, "-O2", "-o", bin, src, "-lspandsp").CombinedOutput(); err != nil {
		msg := "cannot build against spandsp (apt-get install -y libspandsp-dev): " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return func(mode string, in []byte) []byte {
		t.Helper()
		cmd := exec.Command(bin, mode)
		cmd.Stdin = bytes.NewReader(in)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("spandsp %s: %v", mode, err)
		}
		return out
	}
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

// TestG722MatchesSpandsp decodes speech that spandsp encoded, and random
// bytes (every code, saturating the predictors), with both decoders at both
// rates: the samples must be identical.
func TestG722MatchesSpandsp(t *testing.T) {
	run := spandsp(t)
	speech := run("enc", pcmBytes(audio.SpeechLike(1, 10*16000, 16000)))
	if len(speech) != 10*8000 {
		t.Fatalf("spandsp encoded 10 s into %d bytes, want 80000", len(speech))
	}
	noise := make([]byte, 40000)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	for name, in := range map[string][]byte{"speech": speech, "noise": noise, "golden input": g722GoldenInput()} {
		for _, rate := range []int{16000, 8000} {
			mode := map[int]string{16000: "dec16", 8000: "dec8"}[rate]
			want := run(mode, in)
			d := audio.NewG722Decoder(rate)
			var got []byte
			for i := 0; i < len(in); i += 160 { // in packets, as from RTP
				got = d.DecodeLE(got, in[i:min(i+160, len(in))])
			}
			if len(got) != len(want) {
				t.Fatalf("%s at %d Hz: %d bytes, spandsp %d", name, rate, len(got), len(want))
			}
			if i := firstDiff(got, want); i >= 0 {
				t.Errorf("%s at %d Hz: sample %d is %d, spandsp says %d", name, rate, i/2,
					int16(binary.LittleEndian.Uint16(got[i&^1:])), int16(binary.LittleEndian.Uint16(want[i&^1:])))
			}
			if name == "golden input" {
				t.Logf("golden %d Hz: %x", rate, sha(want))
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}
