package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/callvault/callvault/media"
	"github.com/callvault/callvault/recorder/siprectest"
)

func sipCmd(e *env) *ffcli.Command {
	return group("sip", "callvault sip <test> [flags]", "The SIPREC recording server: check that a deployment records",
		sipTestCmd(e))
}

// sipTestCmd sends one recording session to a running recorder, as a
// phone system would, and checks what was stored: that is what proves a
// deployment works (allow-list, ports, firewall, SRTP, storage, keys).
func sipTestCmd(e *env) *ffcli.Command {
	var (
		addr, from, codec, user, passwordFile string
		seconds                               int
		srtpOn                                bool
		wait                                  time.Duration
		tlsFlags                              sipTestTLS
	)
	return e.command(spec{
		name: "sip test", usage: "callvault sip test [flags]",
		short: "Send a test recording session to the SIPREC server and check the stored recording",
		long: "Opens a SIPREC session on --sip from this machine, as the phone system would: an INVITE with\n" +
			"SDP and recording metadata, then two streams of synthetic speech. It then finds the stored\n" +
			"recording in the deployment (--data), decrypts it and checks that each channel holds, sample\n" +
			"for sample, the audio sent on its stream, and that it lasts as long as the session.\n" +
			"This machine's address must be in serve's --sip-allow. The test call is kept like any other\n" +
			"recording; its Call-ID starts callvault-sip-test- and its parties have no phone numbers.",
		action: "sip.test",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&addr, "sip", "127.0.0.1:5060", "the recorder's SIP address, as given to serve --sip (UDP), or --sip-tls with --tls")
			fs.StringVar(&from, "from", "", "this machine's address to send from (default: the one that routes to --sip)")
			fs.StringVar(&codec, "codec", "PCMA", "PCMU or PCMA")
			fs.IntVar(&seconds, "seconds", 5, "length of the test call")
			fs.BoolVar(&srtpOn, "srtp", false, "send SRTP (RTP/SAVP with an SDES key), as TLS deployments should")
			fs.StringVar(&user, "user", "", "digest user name, when serve has --sip-auth")
			fs.StringVar(&passwordFile, "password-file", "", "file holding the digest password")
			fs.DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the recording to be stored")
			tlsFlags.register(fs)
		},
		run: func(ctx context.Context, dep *deployment, _ []string) error {
			server, err := netip.ParseAddrPort(addr)
			if err != nil {
				return fmt.Errorf("--sip %q: use host:port with an IP address", addr)
			}
			if codec != "PCMU" && codec != "PCMA" {
				return fmt.Errorf("--codec %q: use PCMU or PCMA", codec)
			}
			if seconds < 1 || seconds > 600 {
				return fmt.Errorf("--seconds %d: use 1 to 600", seconds)
			}
			local, err := sendingAddr(server, from)
			if err != nil {
				return err
			}
			call := siprectest.Call{CallID: fmt.Sprintf("callvault-sip-test-%d@%s", time.Now().UnixNano(), local), Codec: codec,
				Caller:      siprectest.Party{AOR: "sip:caller@sip-test.invalid", Name: "callvault sip test (caller)"},
				Callee:      siprectest.Party{AOR: "sip:recorded@sip-test.invalid", Name: "callvault sip test (staff)"},
				CallerAudio: audio.SpeechLike(11, seconds*8000, 8000), CalleeAudio: audio.SpeechLike(12, seconds*8000, 8000),
				Username: user}
			if passwordFile != "" {
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return fmt.Errorf("--password-file: %w", err)
				}
				call.Password = strings.TrimSpace(string(b))
			}
			if srtpOn {
				call.SRTPKey = make([]byte, 30)
				rand.Read(call.SRTPKey)
			}
			var c *siprectest.Client
			if !tlsFlags.on && tlsFlags != (sipTestTLS{}) {
				return fmt.Errorf("--tls-ca, --tls-name, --tls-cert and --tls-key are for --tls")
			}
			if tlsFlags.on {
				conf, err := tlsFlags.config(server)
				if err != nil {
					return err
				}
				if err := probeTLS(server, conf); err != nil {
					return err
				}
				c, err = siprectest.NewTLSClient(server, conf)
				if err != nil {
					return err
				}
			} else if c, err = siprectest.NewClient(server); err != nil {
				return err
			}
			c.IP = local
			defer c.Close()
			transport := "UDP"
			if tlsFlags.on {
				transport = "TLS"
			}
			fmt.Fprintf(e.stdout, "sending a %d s %s session over %s from %s to %s (Call-ID %s)\n", seconds, codec, transport, local, server, call.CallID)
			start := time.Now()
			octx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+20*time.Second)
			res, err := c.Run(octx, call)
			cancel()
			session := time.Since(start)
			if err != nil {
				return fmt.Errorf("the session failed: %s", sessionFailure(res, err))
			}
			for _, st := range res.Answer.Streams {
				fmt.Fprintf(e.stdout, "  stream %s answered %s on %s:%d (%s)\n", st.Label, st.Direction, st.Addr, st.Port, st.Proto)
			}

			src, err := dep.sources.FindSourceByName(ctx, "siprec")
			if err != nil {
				return fmt.Errorf("this deployment has no siprec source: is serve running on this --data with --sip? (%s)", callvault.ErrorMessage(err))
			}
			var rec *callvault.Recording
			for deadline := time.Now().Add(wait); ; {
				if rec, err = dep.recordings.FindRecordingBySourceRef(ctx, src.ID, call.CallID); err == nil {
					break
				}
				if callvault.ErrorCode(err) != callvault.ENOTFOUND || time.Now().After(deadline) {
					return fmt.Errorf("the recording was not stored within %v: %s (see serve's log for %s)", wait, callvault.ErrorMessage(err), call.CallID)
				}
				time.Sleep(200 * time.Millisecond)
			}
			left, right, err := channels(ctx, dep, rec)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "stored recording %s: %v, academy %q, direction %s, %d participants\n",
				rec.ID, rec.Duration.Round(time.Millisecond), rec.Academy, rec.Direction, len(rec.Participants))
			var problems []string
			for i, ch := range []struct {
				name     string
				got, pcm []int16
			}{{"left (caller)", left, call.CallerAudio}, {"right (staff)", right, call.CalleeAudio}} {
				want := heard(codec, ch.pcm)
				off, share := audio.Find(ch.got, want)
				fmt.Fprintf(e.stdout, "  %s channel: %.2f%% of the samples sent are there, from %v\n", ch.name, 100*share,
					time.Duration(off)*time.Second/8000)
				if share < 0.99 {
					problems = append(problems, fmt.Sprintf("channel %d holds %.2f%% of the audio sent (lost packets? wrong key?)", i, 100*share))
				}
			}
			// The recording may outlast the session by a stream's lateness
			// (a stream runs as late as its first packet came), no more.
			sent := time.Duration(seconds) * time.Second
			if rec.Duration < sent || rec.Duration > session+250*time.Millisecond {
				problems = append(problems, fmt.Sprintf("the recording lasts %v; %v was sent in a session of %v", rec.Duration, sent, session))
			}
			if len(problems) > 0 {
				return fmt.Errorf("the recording is not right: %s", strings.Join(problems, "; "))
			}
			fmt.Fprintln(e.stdout, "OK: the recorder answered, received both streams, and stored the audio exactly")
			return nil
		},
	})
}

// sendingAddr is the address to send from: from, or the one the kernel
// would use to reach server.
func sendingAddr(server netip.AddrPort, from string) (netip.Addr, error) {
	if from != "" {
		a, err := netip.ParseAddr(from)
		if err != nil {
			return a, fmt.Errorf("--from %q: %w", from, err)
		}
		return a, nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("no route to %s: %w", server, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}

// sessionFailure says what a failed session means for the operator.
func sessionFailure(res *siprectest.Result, err error) string {
	status := 0
	if res != nil {
		status = res.Status
	}
	switch status {
	case 0:
		return fmt.Sprintf("no answer (%v): is serve running with --sip on that address, and does a firewall let SIP through?", err)
	case 401:
		return "401: the recorder asks for digest authentication; give --user and --password-file as in serve's --sip-auth"
	case 403:
		return "403: this address is not a recording client; add it to serve's --sip-allow"
	case 488:
		return "488: the recorder refused the offer (codec or SRTP suite)"
	case 503:
		return "503: the recorder refuses new sessions (storage nearly full, or too many sessions)"
	}
	return fmt.Sprintf("%d: %v", status, err)
}

// heard is what a recorder can at best hear of pcm sent as codec: the
// G.711 round trip.
func heard(codec string, pcm []int16) []int16 {
	out, err := media.Decode(codec+"/8000", siprectest.EncodeG711(codec, pcm, 160))
	if err != nil {
		panic(err) // PCMU and PCMA always decode
	}
	return out[:len(pcm)]
}

// channels decrypts a stored recording (PCM16 stereo WAV) into its two
// channels.
func channels(ctx context.Context, dep *deployment, rec *callvault.Recording) (left, right []int16, err error) {
	if rec.Codec != "pcm16" || rec.Channels != 2 {
		return nil, nil, fmt.Errorf("the recording is %s with %d channels, not the recorder's PCM16 stereo", rec.Codec, rec.Channels)
	}
	b, err := dep.blobs.Open(ctx, rec.BlobKey)
	if err != nil {
		return nil, nil, fmt.Errorf("the recording's audio: %s", callvault.ErrorMessage(err))
	}
	defer b.Close()
	plain, _, err := dep.vault.Decrypt(b, b.Size(), rec.ID, rec.KeyEpoch)
	if err != nil {
		return nil, nil, fmt.Errorf("the recording does not decrypt: %w", err)
	}
	data := make([]byte, rec.DataSize)
	if _, err := plain.ReadAt(data, rec.DataOffset); err != nil && err != io.EOF {
		return nil, nil, fmt.Errorf("the recording's audio: %w", err)
	}
	for i := 0; i+4 <= len(data); i += 4 {
		left = append(left, int16(binary.LittleEndian.Uint16(data[i:])))
		right = append(right, int16(binary.LittleEndian.Uint16(data[i+2:])))
	}
	return left, right, nil
}
