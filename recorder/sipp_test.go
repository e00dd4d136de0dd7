package recorder_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
)

// need skips (or, under CI=true, fails) when a tool is missing.
func need(t *testing.T, what, hint string, ok bool) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true makes this a failure): %s", what, hint)
	}
	t.Skipf("%s is missing: %s", what, hint)
}

const g711aPcap = "/usr/share/sip-tester/g711a.pcap"

// pcapRTPPayloads reads the RTP payloads of a classic pcap of Ethernet,
// IPv4 and UDP frames.
func pcapRTPPayloads(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
		t.Fatalf("%s is not a little-endian Ethernet pcap", path)
	}
	var out [][]byte
	for off := 24; off+16 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		frame := b[off+16 : off+16+n]
		off += 16 + n
		ihl := int(frame[14]&0x0f) * 4
		udp := frame[14+ihl:]
		rtp := udp[8:]
		cc := int(rtp[0] & 0x0f)
		out = append(out, rtp[12+4*cc:])
	}
	return out
}

// sipp, a real SIP test tool, plays an SBC: a SIPREC INVITE with a
// multipart body of SDP and metadata and a session timer, then the A-law
// audio of a pcap on the first stream, a session refresh by UPDATE (the
// scenario checks that both 200 OKs carry the timer agreed), then BYE. The
// recording holds that audio, sample for sample, on the caller's channel,
// with the metadata's parties.
func TestSippSession(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	need(t, "sipp", "apt-get install sip-tester", err == nil)
	_, err = os.Stat(g711aPcap)
	need(t, g711aPcap, "apt-get install sip-tester", err == nil)
	need(t, "root (sipp's play_pcap_audio sends from raw sockets)", "run as root", os.Geteuid() == 0)

	f := newFixture(t)
	scenario, _ := filepath.Abs("testdata/siprec_uac.xml")
	cmd := exec.Command(sipp, "-sf", scenario, "-m", "1", "-i", "127.0.0.1", "-mi", "127.0.0.1",
		"-mp", fmt.Sprint(40000+2*(os.Getpid()%2000)), "-timeout", "30s", "-timeout_error", "-nostdin",
		"-trace_err", "-error_file", filepath.Join(t.TempDir(), "sipp.err"), f.sip.String())
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) || err != nil {
		t.Fatalf("sipp failed: %v\n%s", err, out)
	}

	var rec *callvault.Recording
	deadline := time.Now().Add(10 * time.Second)
	for rec == nil && time.Now().Before(deadline) {
		recs, _, _, err := f.d.Recordings.FindRecordings(f.d.Sys, callvault.RecordingFilter{SourceKind: callvault.SourceSIPREC})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 1 {
			rec = recs[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rec == nil {
		t.Fatal("sipp's session left no recording")
	}
	if rec.Academy != "oakfield" || rec.Direction != callvault.DirectionInbound || len(rec.Participants) != 2 {
		t.Errorf("recording: academy %s, direction %s, participants %+v", rec.Academy, rec.Direction, rec.Participants)
	}
	// The session lasts from the INVITE to the BYE: the 7 s pcap plays
	// within the scenario's 9 s pause.
	if rec.Duration < 9*time.Second || rec.Duration > 10*time.Second {
		t.Errorf("duration %v, want about 9 s", rec.Duration)
	}
	var sent []int16
	for _, p := range pcapRTPPayloads(t, g711aPcap) {
		pcm := g711.DecodeAlaw(p)
		for i := 0; i+1 < len(pcm); i += 2 {
			sent = append(sent, int16(binary.LittleEndian.Uint16(pcm[i:])))
		}
	}
	left, right := f.channels(t, rec)
	if off, ok := audio.Find(left, sent); ok < 0.99 {
		t.Errorf("the caller's channel does not hold the pcap's %d samples (at %d: %.2f%% match)", len(sent), off, 100*ok)
	}
	for _, v := range right {
		if v != 0 {
			t.Error("the staff channel, on which sipp sent nothing, is not silent")
			break
		}
	}
}
