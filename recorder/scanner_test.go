package recorder_test

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sipvicious returns the path of one of SIPVicious's tools: Debian names
// them svmap, svwar, svcrack; pip's sipvicious_svmap and so on.
func sipvicious(t *testing.T, tool string) string {
	t.Helper()
	for _, name := range []string{"sipvicious_" + tool, tool} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	need(t, "SIPVicious ("+tool+")", "apt-get install -y sipvicious", false)
	return ""
}

// scan runs a SIPVicious tool and returns what it printed.
func scan(t *testing.T, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	// SIPVicious keeps sessions in ~/.sipvicious and lists earlier finds.
	cmd.Env = append(cmd.Environ(), "HOME="+t.TempDir())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s %s (%v)\n%s", tool, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	if ctx.Err() != nil {
		t.Fatalf("%s did not finish in 60 s", tool)
	}
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return string(out)
}

// natRelay stands for a NAT between a scanner and the recorder: what the
// scanner sends to addr reaches the recorder from strangerIP, and the
// recorder's replies go back to the scanner. It keeps the status of every
// reply, which is all the scanner can learn. (svwar 0.3.3 ignores its -b
// option, so it cannot be made to send from strangerIP itself.)
type natRelay struct {
	addr  netip.AddrPort
	close func() // stops relaying

	mu    sync.Mutex
	codes []int
	seen  map[string]bool // Via branches answered
}

var branchRE = regexp.MustCompile(`branch=[^;\r\n]+`)

func startRelay(t *testing.T, to netip.AddrPort) *natRelay {
	t.Helper()
	in, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), 0)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(strangerIP, 0)))
	if err != nil {
		t.Fatal(err)
	}
	r := &natRelay{addr: in.LocalAddr().(*net.UDPAddr).AddrPort(), close: func() { in.Close(); out.Close() }, seen: map[string]bool{}}
	t.Cleanup(r.close)
	var scanner netip.AddrPort
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := in.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			scanner = from
			r.mu.Unlock()
			out.WriteToUDPAddrPort(buf[:n], to)
		}
	}()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := out.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			r.mu.Lock()
			// A final response to an INVITE is retransmitted until the
			// ACK: count each transaction once.
			key := string(branchRE.Find(buf[:n]))
			if !r.seen[key] || key == "" {
				r.seen[key] = true
				if code, ok := statusCode(buf[:n]); ok {
					r.codes = append(r.codes, code)
				} else {
					r.codes = append(r.codes, 0) // a request from the recorder
				}
			}
			back := scanner
			r.mu.Unlock()
			in.WriteToUDPAddrPort(buf[:n], back)
		}
	}()
	return r
}

// replies returns the statuses of the recorder's replies so far, one per
// transaction.
func (r *natRelay) replies() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.codes...)
}

// extensions returns the extensions svwar reports having found.
func extensions(svwarOutput string) []string {
	var found []string
	table := false
	for _, line := range strings.Split(svwarOutput, "\n") {
		if strings.Contains(line, "| Extension") {
			table = true
			continue
		}
		if f := strings.Split(line, "|"); table && len(f) == 4 && strings.TrimSpace(f[1]) != "" {
			found = append(found, strings.TrimSpace(f[1])+" ("+strings.TrimSpace(f[2])+")")
		}
	}
	return found
}

var svmapRow = regexp.MustCompile(`\|\s*(\S+:\d+)\s*\|\s*(.*?)\s*\|`)

// devices returns what svmap reports: "address user-agent" per device.
func devices(svmapOutput string) []string {
	var found []string
	for _, m := range svmapRow.FindAllStringSubmatch(svmapOutput, -1) {
		found = append(found, m[1]+" "+m[2])
	}
	return found
}

// SIPVicious, a real SIP scanner, run from an address outside the
// allow-list (a scanner on the network, here behind a NAT) learns nothing
// of the recorder: svmap and svwar get at most the rate limiter's few
// 403s between them, then silence, and svwar finds no extension with
// INVITE or OPTIONS. The recorder records as before. From the recording
// client's own address svmap does find it, which shows the scan works.
func TestScannerLearnsNothing(t *testing.T) {
	svmap, svwar := sipvicious(t, "svmap"), sipvicious(t, "svwar")
	if !isolated(t) {
		return
	}
	f := hostileFixture(t, recordingClient(t))
	relay := startRelay(t, f.sip)
	port, host := strconv.Itoa(int(relay.addr.Port())), relay.addr.Addr().String()

	// svmap sends OPTIONS; -t paces it, --first 1 keeps it to this host.
	found := devices(scan(t, svmap, "-p", port, "-t", "0.1", host))
	t.Logf("svmap from a stranger reports %q", found)
	for _, args := range [][]string{{"-m", "INVITE"}, {"-m", "OPTIONS"}, {"-m", "INVITE", "--force"}} {
		out := scan(t, svwar, append(args, "-p", port, "-e", "1000-1010,2000-2099", "--maximumtime", "1", "-v", host)...)
		if ext := extensions(out); len(ext) > 0 {
			t.Errorf("svwar %s from a stranger found extensions %q", args, ext)
		}
	}
	relay.close() // no late retransmission reaches the next scan
	got := relay.replies()
	t.Logf("the recorder's replies to the stranger: %v", got)
	if len(got) == 0 || len(got) > 5 {
		t.Errorf("%d requests of the stranger's scans answered, want 1 to 5 (the rate limiter's 403s)", len(got))
	}
	for _, c := range got {
		if c != 403 {
			t.Errorf("a stranger's scan got %d, want only 403", c)
		}
	}
	if c := f.rec.Counts(); c.Started != 0 || c.Active != 0 {
		t.Errorf("the scans opened sessions: %+v", c)
	}

	// From the recording client's address the scanner finds the recorder.
	client := devices(scan(t, svmap, "-p", strconv.Itoa(int(f.sip.Port())), "-t", "0.1", f.sip.Addr().String()))
	t.Logf("svmap from the recording client reports %q", client)
	if len(client) != 1 || !strings.HasPrefix(client[0], f.sip.String()+" ") {
		t.Errorf("svmap from the recording client reports %q, want the recorder at %s", client, f.sip)
	}
	f.stillRecords(t, "after-scan@sbc.example")
}
