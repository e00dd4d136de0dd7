//go:build cgo

package media_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
)

// libsrtpTool is a C program around libsrtp 2 (the SRTP of Asterisk,
// FreeSWITCH, baresip and most SBCs): "libsrtp SUITE HEXKEY [HEXMKI]"
// reads RTP packets on stdin, each after its length in two big-endian
// bytes, and writes them protected the same way, as a client sending with
// that key (and master key identifier) would.
const libsrtpTool = `
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <srtp2/srtp.h>

int main(int argc, char **argv) {
	srtp_policy_t p;
	memset(&p, 0, sizeof p);
	const char *suite = argv[1];
	if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_80")) srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
	else if (!strcmp(suite, "AES_CM_128_HMAC_SHA1_32")) srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
	else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_80")) srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p.rtp);
	else if (!strcmp(suite, "AES_256_CM_HMAC_SHA1_32")) srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(&p.rtp);
	else if (!strcmp(suite, "AEAD_AES_128_GCM")) srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
	else if (!strcmp(suite, "AEAD_AES_256_GCM")) srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtp);
	else return 2;
	p.rtcp = p.rtp;
	unsigned char key[64], mki[128];
	size_t n = strlen(argv[2]) / 2;
	for (size_t i = 0; i < n && i < sizeof key; i++) sscanf(argv[2] + 2 * i, "%2hhx", &key[i]);
	p.key = key;
	srtp_master_key_t mk = {key, mki, 0}, *mks[1] = {&mk};
	if (argc > 3) {
		mk.mki_size = strlen(argv[3]) / 2;
		for (size_t i = 0; i < mk.mki_size && i < sizeof mki; i++) sscanf(argv[3] + 2 * i, "%2hhx", &mki[i]);
		p.key = NULL, p.keys = mks, p.num_master_keys = 1;
	}
	p.ssrc.type = ssrc_any_outbound;
	p.window_size = 128;
	srtp_t s;
	if (srtp_init() || srtp_create(&s, &p)) return 3;
	unsigned char len[2], buf[2048 + SRTP_MAX_TRAILER_LEN];
	while (fread(len, 1, 2, stdin) == 2) {
		int m = len[0] << 8 | len[1];
		if (m > 2048 || fread(buf, 1, m, stdin) != (size_t) m) return 4;
		if (srtp_protect_mki(s, buf, &m, argc > 3, 0)) return 5;
		len[0] = m >> 8, len[1] = m;
		fwrite(len, 1, 2, stdout);
		fwrite(buf, 1, m, stdout);
	}
	return 0;
}
`

// libsrtp builds the tool, or skips the test if libsrtp 2 is not installed
// (and fails under CI=true), and returns a function that protects packets
// with it.
func libsrtp(t *testing.T) func(k media.SRTPKey, packets [][]byte) [][]byte {
	t.Helper()
	dir := t.TempDir()
	src, bin := filepath.Join(dir, "srtp.c"), filepath.Join(dir, "srtp")
	if err := os.WriteFile(src, []byte(libsrtpTool), 0o600); err != nil {
		t.Fatal(err)
	}
	cc := "cc"
	if out, err := exec.Command("go", "env", "CC").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
		cc = strings.Fields(string(out))[0]
	}
	if out, err := exec.Command(cc, "-O2", "-o", bin, src, "-lsrtp2").CombinedOutput(); err != nil {
		msg := "cannot build against libsrtp 2 (apt-get install -y libsrtp2-dev): " + strings.TrimSpace(string(out))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return func(k media.SRTPKey, packets [][]byte) [][]byte {
		t.Helper()
		var in bytes.Buffer
		for _, p := range packets {
			in.Write(binary.BigEndian.AppendUint16(nil, uint16(len(p))))
			in.Write(p)
		}
		args := []string{k.Suite, hex.EncodeToString(k.Key)}
		if k.MKI != nil {
			args = append(args, hex.EncodeToString(k.MKI))
		}
		cmd := exec.Command(bin, args...)
		cmd.Stdin = &in
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("libsrtp %s: %v", k.Suite, err)
		}
		var sealed [][]byte
		r := bytes.NewReader(out)
		for {
			var n uint16
			if err := binary.Read(r, binary.BigEndian, &n); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			p := make([]byte, n)
			if _, err := io.ReadFull(r, p); err != nil {
				t.Fatal(err)
			}
			sealed = append(sealed, p)
		}
		if len(sealed) != len(packets) {
			t.Fatalf("libsrtp protected %d of %d packets", len(sealed), len(packets))
		}
		return sealed
	}
}

// TestSRTPFromLibsrtp: SRTP made by libsrtp, the implementation most SIPREC
// clients use, with every suite (and with an MKI), through a sequence
// number wrap (the rollover counter) and an SSRC change, records the same
// samples as the same packets sent in the clear.
func TestSRTPFromLibsrtp(t *testing.T) {
	protect := libsrtp(t)
	speech := audio.SpeechLike(9, 5*8000, 8000)
	var plain [][]byte
	for k := range 220 {
		ssrc, seq, ts := uint32(0xA1B2C3D4), uint16(65450+k), uint32(0xFFFFF000+160*k)
		if k >= 150 {
			ssrc, seq, ts = 0x01020304, uint16(k), uint32(160*k)
		}
		pos := 160 * (k + 1)
		b, err := pkt(ssrc, seq, ts, 8, encode(8, speech[pos:pos+160])).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		plain = append(plain, b)
	}
	var keys []media.SRTPKey
	for suite := range srtpProfiles {
		k, err := media.NewSRTPKey(suite)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	withMKI, _ := media.NewSRTPKey("AES_CM_128_HMAC_SHA1_80")
	withMKI.MKI = []byte{0, 0, 0, 1}
	keys = append(keys, withMKI)
	for _, key := range keys {
		name := key.Suite
		if key.MKI != nil {
			name += " with MKI"
		}
		t.Run(name, func(t *testing.T) {
			sealed := protect(key, plain)
			c := &clock{t: t0}
			connP, connS := listen(t), listen(t)
			open, secure := newSender(t, connP), newSender(t, connS)
			sess := session(t, c, media.Config{},
				media.StreamConfig{Label: "plain", Side: callvault.SideExternal, Conn: connP, Remote: addrOf(open.conn)},
				media.StreamConfig{Label: "srtp", Side: callvault.SideStaff, Conn: connS, Remote: addrOf(secure.conn), SRTP: &key})
			open.tgt, secure.tgt = lockstep(sess, 0), lockstep(sess, 1)
			for k := range plain {
				c.Set(t0.Add(time.Duration(160*(k+1)) * time.Second / 8000))
				open.raw(plain[k])
				secure.raw(sealed[k])
			}
			c.Set(t0.Add(time.Duration(160*(len(plain)+1)) * time.Second / 8000))
			sp, err := sess.Finish()
			if err != nil {
				t.Fatal(err)
			}
			left, right := render(t, sp)
			compare(t, "libsrtp channel against the clear one", right, left)
			if st := sess.Stats().Streams[1]; st.Packets != uint64(len(plain)) || st.AuthFailed+st.Malformed+st.Lost != 0 {
				t.Errorf("SRTP stream %+v; want %d packets, none failing, malformed or lost", st, len(plain))
			}
		})
	}
}
