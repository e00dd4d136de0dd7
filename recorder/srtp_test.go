package recorder_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/recorder/siprectest"
)

// An SRTP session (RTP/SAVP with an SDES key, with or without a master
// key identifier in every packet) is answered with SRTP and a key of the
// recorder's own, and recorded exactly like plain RTP.
func TestRecordsAnSRTPSession(t *testing.T) {
	t.Run("no MKI", func(t *testing.T) { recordsSRTP(t, nil) })
	t.Run("MKI", func(t *testing.T) { recordsSRTP(t, []byte{0, 0, 1, 7}) })
}

func recordsSRTP(t *testing.T, mki []byte) {
	f := newFixture(t)
	key := make([]byte, 30)
	rand.Read(key)
	caller, callee := audio.SpeechLike(3, 16000, 8000), audio.SpeechLike(4, 16000, 8000)
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), siprectest.Call{CallID: "srtp@sbc", SRTPKey: key, SRTPMKI: mki,
		Caller: siprectest.Party{AOR: "sip:+447700900123@pstn.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"},
		CallerAudio: caller, CalleeAudio: callee})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range res.Answer.Streams {
		if st.Proto != "RTP/SAVP" || len(st.Crypto) != 1 || st.Crypto[0].Suite != "AES_CM_128_HMAC_SHA1_80" || bytes.Equal(st.Crypto[0].Key, key) {
			t.Errorf("answer stream %s: %s %+v; want RTP/SAVP with a key of the recorder's own", st.Label, st.Proto, st.Crypto)
		}
	}
	rec := f.waitRecording(t, "srtp@sbc")
	left, right := f.channels(t, rec)
	if _, ok := audio.Find(left, g711RoundTrip(caller, "PCMU")); ok < 0.99 {
		t.Fatal("the SRTP session's caller channel does not hold the audio sent")
	}
	if _, ok := audio.Find(right, g711RoundTrip(callee, "PCMU")); ok < 0.99 {
		t.Fatal("the SRTP session's channels do not hold the audio sent")
	}
}

// A wrong key records nothing but silence: no noise from undecryptable
// packets.
func TestSRTPWithTheWrongKeyRecordsSilence(t *testing.T) {
	f := newFixture(t)
	key := make([]byte, 30)
	rand.Read(key)
	c, err := siprectest.NewClient(f.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	speech := audio.SpeechLike(3, 8000, 8000)
	// The SDP carries one key; the packets are encrypted with another.
	call := siprectest.Call{CallID: "badkey@sbc", SRTPKey: key, CallerAudio: speech, CalleeAudio: speech,
		Caller: siprectest.Party{AOR: "sip:+447700900123@x"}, Callee: siprectest.Party{AOR: "sip:2001@x"}}
	call.WrongSRTPKey = true
	if _, err := c.Run(context.Background(), call); err != nil {
		t.Fatal(err)
	}
	left, right := f.channels(t, f.waitRecording(t, "badkey@sbc"))
	for _, ch := range [][]int16{left, right} {
		for _, v := range ch {
			if v != 0 {
				t.Fatal("packets under the wrong key were written as audio")
			}
		}
	}
}

// A re-INVITE that offers a new SDES key mid-call (an SBC that rekeys on
// every re-INVITE, or after a transfer) is answered and the rest of the
// call decrypted with the new key: nothing after the switch is lost. A
// re-INVITE that offers the SRTP streams as plain RTP is refused with 488
// and changes nothing.
func TestSRTPRekeyByReinvite(t *testing.T) {
	f := newFixture(t)
	before, after := [2][]int16{speechPCMU(11), speechPCMU(12)}, [2][]int16{speechPCMU(13), speechPCMU(14)}
	key, next := make([]byte, 30), make([]byte, 30)
	rand.Read(key)
	rand.Read(next)
	call := siprectest.Call{CallID: "rekey@sbc", SRTPKey: key,
		Caller: siprectest.Party{AOR: "sip:+447700900123@pstn.example"}, Callee: siprectest.Party{AOR: "sip:2001@pbx.example"}}
	ctx := context.Background()
	s := f.dialAndSend(t, call, before)
	plain := call
	plain.SRTPKey = nil
	if status, err := s.Reinvite(ctx, plain); err != nil || status != 488 {
		t.Errorf("re-INVITE offering plain RTP: status %d, %v; want 488", status, err)
	}
	rekey := call
	rekey.SRTPKey, rekey.SRTPMKI = next, []byte{0, 0, 0, 2}
	if status, err := s.Reinvite(ctx, rekey); err != nil || status != 200 {
		t.Fatalf("re-INVITE with a new key: status %d, %v; want 200", status, err)
	}
	f.finishAndCheck(t, s, call.CallID, "the new key", before, after)
}
