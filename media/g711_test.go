package media

import (
	"encoding/binary"
	"testing"
)

// ituULaw is the decoder output of ITU-T G.711 Table 2 for a µ-law
// character, derived from the table's segment structure: the transmitted
// bits are all inverted; after inversion bit 7 is the sign (0 positive),
// bits 6-4 the segment s and bits 3-0 the step i, and the output value is
// (2i+33)·2^s − 33 on the table's scale of ±8159 (in 16-bit PCM, ×4).
func ituULaw(code byte) int16 {
	c := ^code
	s, i := int(c>>4&7), int(c&15)
	v := ((2*i+33)<<s - 33) * 4
	if c&0x80 != 0 {
		v = -v
	}
	return int16(v)
}

// ituALaw is the decoder output of ITU-T G.711 Table 1 for an A-law
// character: the even bits are inverted (XOR 0x55); after that bit 7 is the
// sign (1 positive), bits 6-4 the segment s and bits 3-0 the step i. The
// output is 2i+1 in segment 0 and (2i+33)·2^(s−1) above, on the table's
// scale of ±4032 (in 16-bit PCM, ×8).
func ituALaw(code byte) int16 {
	c := code ^ 0x55
	s, i := int(c>>4&7), int(c&15)
	v := 2*i + 1
	if s > 0 {
		v = (2*i + 33) << (s - 1)
	}
	v *= 8
	if c&0x80 == 0 {
		v = -v
	}
	return int16(v)
}

// TestG711MatchesITU checks the decoding tables (zaf/g711, through
// ulawPCM/alawPCM) against ITU-T G.711 for all 256 codes of each law, and a
// few values read off the standard's tables directly.
func TestG711MatchesITU(t *testing.T) {
	for c := range 256 {
		code := byte(c)
		if got, want := int16(ulawPCM[code]), ituULaw(code); got != want {
			t.Errorf("µ-law %#02x decodes to %d, G.711 Table 2 says %d", code, got, want)
		}
		if got, want := int16(alawPCM[code]), ituALaw(code); got != want {
			t.Errorf("A-law %#02x decodes to %d, G.711 Table 1 says %d", code, got, want)
		}
	}
	// Table 2 (µ-law): characters 1000 0000 / 0000 0000 are ±8031 (the
	// largest output), 1111 1111 and 0111 1111 are 0; 1110 1111 is 33 (the
	// first step of segment 2).
	// Table 1 (A-law): 1010 1010 / 0010 1010 are ±4032; 1101 0101 / 0101
	// 0101 are ±1 (the smallest); 1100 0101 is 33.
	spot := []struct {
		law   string
		table *[256]uint16
		code  byte
		want  int
	}{
		{"µ", &ulawPCM, 0x80, 8031 * 4}, {"µ", &ulawPCM, 0x00, -8031 * 4},
		{"µ", &ulawPCM, 0xFF, 0}, {"µ", &ulawPCM, 0x7F, 0}, {"µ", &ulawPCM, 0xEF, 33 * 4},
		{"A", &alawPCM, 0xAA, 4032 * 8}, {"A", &alawPCM, 0x2A, -4032 * 8},
		{"A", &alawPCM, 0xD5, 8}, {"A", &alawPCM, 0x55, -8}, {"A", &alawPCM, 0xC5, 33 * 8},
	}
	for _, s := range spot {
		if got := int(int16(s.table[s.code])); got != s.want {
			t.Errorf("%s-law %#02x decodes to %d, G.711 says %d", s.law, s.code, got, s.want)
		}
	}
}

// TestDecodeG711 checks the four-at-a-time decoder against the tables for
// every code and for lengths that are not multiples of four.
func TestDecodeG711(t *testing.T) {
	all := make([]byte, 256+3)
	for i := range all {
		all[i] = byte(i * 7)
	}
	for _, table := range []*[256]uint16{&ulawPCM, &alawPCM} {
		for _, n := range []int{0, 1, 3, 4, 5, 160, len(all)} {
			dst := make([]byte, 2*n+8)
			got := decodeG711(dst, all[:n], table)
			if len(got) != 2*n {
				t.Fatalf("decodeG711(%d bytes) returned %d bytes", n, len(got))
			}
			for i, c := range all[:n] {
				if v := binary.LittleEndian.Uint16(got[2*i:]); v != table[c] {
					t.Fatalf("decodeG711(%d bytes): sample %d (code %#02x) is %d, the table says %d", n, i, c, int16(v), int16(table[c]))
				}
			}
		}
	}
}
