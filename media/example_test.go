package media_test

import (
	"io"
	"log"
	"net"
	"net/netip"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/media"
)

func Example() {
	// At start-up, before any session: recordings a crash interrupted.
	spools, err := media.Recover("/var/spool/callvault")
	if err != nil {
		log.Print(err) // some folder is not a spool; the others are in spools
	}
	for _, sp := range spools {
		_ = sp.Interrupted // mark the recording
		// ingest sp.Render(w) as below, then sp.Remove()
	}

	// On an INVITE: open the sockets, then answer with their ports.
	external, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40000})
	staff, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40002})
	sess, err := media.NewSession(media.Config{Dir: "/var/spool/callvault", ID: "0192d6f1-7d3a-7a1c-9e2b-3f4a5b6c7d8e"},
		media.StreamConfig{Label: "1", Side: callvault.SideExternal, Conn: external,
			Remote: netip.MustParseAddrPort("192.0.2.9:30000"), PayloadTypes: map[uint8]string{0: "PCMU/8000", 101: "telephone-event/8000"}},
		media.StreamConfig{Label: "2", Side: callvault.SideStaff, Conn: staff,
			Remote: netip.MustParseAddrPort("192.0.2.9:30002"), PayloadTypes: map[uint8]string{8: "PCMA/8000"}})
	if err != nil {
		log.Fatal(err)
	}

	// Metadata says the caller is reading out a card number.
	sess.Pause()
	sess.Resume()

	// On BYE.
	sp, err := sess.Finish()
	if err != nil {
		log.Print(err) // audio was lost; sp still has what reached the disk
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(sp.Render(pw)) }()
	_ = pr                 // hand to the encrypted ingest, with sp.Start, sp.End and sp.Paused
	_ = sess.Stats().Total // for metrics
	sp.Remove()            // once ingested
}

// An RTP/SAVP stream offering Opus, as the SIP side sets it up: the stream
// decrypts with the key of the a=crypto the client offered (the key it
// sends with), and the answer carries a key of the recorder's own for the
// same suite, under the offer's tag, although nothing is ever sent with it.
func Example_srtpOpus() {
	offered := media.SRTPKey{Suite: "AES_CM_128_HMAC_SHA1_80", Key: make([]byte, 30)} // the offer's a=crypto
	if !media.SupportedSuite(offered.Suite) {
		return // try the offer's next a=crypto, or reject the stream
	}
	ours, err := media.NewSRTPKey(offered.Suite)
	if err != nil {
		log.Fatal(err)
	}
	_ = ours // a=crypto:<offer's tag> AES_CM_128_HMAC_SHA1_80 inline:<base64 of ours.Key>

	conn, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 40004})
	sess, err := media.NewSession(media.Config{Dir: "/var/spool/callvault", ID: "0192d6f1-7d3a-7a1c-9e2b-3f4a5b6c7d8f"},
		media.StreamConfig{Label: "1", Side: callvault.SideStaff, Conn: conn,
			Remote:       netip.MustParseAddrPort("192.0.2.9:30004"),
			PayloadTypes: map[uint8]string{111: "opus/48000/2", 101: "telephone-event/48000"},
			SRTP:         &offered})
	if err != nil {
		log.Fatal(err)
	}
	defer sess.Finish()
}
