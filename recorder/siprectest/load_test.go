package siprectest_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/cvtest"
	"github.com/callvault/callvault/recorder"
	"github.com/callvault/callvault/recorder/siprectest"
)

// A small load on a real recorder: every session is answered, every packet
// sent is received in order on the session's streams, and each recording
// holds the leg's speech, sample for sample.
func TestLoad(t *testing.T) {
	d := cvtest.New(t)
	// The callees' extensions are an academy's: the staff side.
	oak := &callvault.Academy{Slug: "oakfield", Name: "Oakfield Primary", Extensions: []callvault.Range{{First: "2000", Last: "2099"}}}
	if err := d.Academies.CreateAcademy(d.Sys, oak); err != nil {
		t.Fatal(err)
	}
	src := &callvault.Source{Name: "sbc", Kind: callvault.SourceSIPREC, TokenHash: "siprectest-load"}
	if err := d.Sources.CreateSource(d.Sys, src); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	rec := &recorder.Recorder{Listen: []recorder.Listener{{Network: "udp", Addr: fmt.Sprintf("127.0.0.1:%d", port)}},
		SpoolDir: t.TempDir(), Archive: d.Archive, Source: src, Academies: d.Academies, Logger: cvtest.Quiet,
		PortMin: 40000 + 2*(port%4000), PortMax: 40000 + 2*(port%4000) + 100}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer rec.Close()

	client, err := siprectest.NewClient(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	caller := audio.SpeechLike(1, 16000, 8000)
	const sessions = 4
	var atStop siprectest.LoadProgress
	var got uint64
	var lost uint64
	l := &siprectest.Load{Client: client, Sessions: sessions, Rate: 100, Hold: time.Second, Senders: 2,
		CallerAudio: caller, CalleeAudio: audio.SpeechLike(2, 16000, 8000),
		Call: siprectest.DefaultLoadCall(t.Name()),
		Stopped: func(p siprectest.LoadProgress) {
			atStop = p
			st := rec.Totals()
			got, lost = st.Packets, st.Lost
		}}
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Answered != sessions || res.Hungup != sessions || atStop.Answered != sessions {
		t.Fatalf("answered %d, hung up %d of %d: %v", res.Answered, res.Hungup, sessions, res.Errors)
	}
	// Each stream sends 50 packets a second from its answer on.
	if min := uint64(2 * sessions * 50 * l.Hold / time.Second); res.Packets < min || res.SendErrors > 0 {
		t.Errorf("sent %d packets (%d failed), want over %d", res.Packets, res.SendErrors, min)
	}
	if got != res.Packets || atStop.Packets != res.Packets || lost != 0 {
		t.Errorf("the recorder received %d packets (%d lost) of %d sent", got, lost, res.Packets)
	}

	deadline := time.Now().Add(10 * time.Second)
	for rec.Sessions() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(res.CallIDs)
	first := siprectest.DefaultLoadCall(t.Name())(0).CallID
	if !slices.Contains(res.CallIDs, first) {
		t.Fatalf("session 0 (%s) is not among those answered: %v", first, res.CallIDs)
	}
	r, err := d.Recordings.FindRecordingBySourceRef(d.Sys, src.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	// Session 0 plays the caller's audio from its start, on the left.
	left := leftChannel(t, d, r)
	want := ulawRoundTrip(caller[:8000])
	if !containsRun(left, want) {
		t.Error("the recording's left channel does not hold the caller's first second of speech")
	}
}

func leftChannel(t *testing.T, d *cvtest.Deployment, rec *callvault.Recording) []int16 {
	t.Helper()
	b, err := d.Blobs.Open(context.Background(), rec.BlobKey)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	plain, size, err := d.Vault.Decrypt(b, b.Size(), rec.ID, rec.KeyEpoch)
	if err != nil {
		t.Fatal(err)
	}
	wav, err := io.ReadAll(io.NewSectionReader(plain, 0, size))
	if err != nil {
		t.Fatal(err)
	}
	data := wav[rec.DataOffset : rec.DataOffset+rec.DataSize]
	var left []int16
	for i := 0; i+4 <= len(data); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
	}
	return left
}

func ulawRoundTrip(pcm []int16) []int16 {
	raw := make([]byte, 2*len(pcm))
	for i, s := range pcm {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(s))
	}
	dec := g711.DecodeUlaw(g711.EncodeUlaw(raw))
	out := make([]int16, len(pcm))
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(dec[2*i:]))
	}
	return out
}

func containsRun(s, run []int16) bool {
	for i := 0; i+len(run) <= len(s); i++ {
		if slices.Equal(s[i:i+len(run)], run) {
			return true
		}
	}
	return false
}
