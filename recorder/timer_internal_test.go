package recorder

import (
	"fmt"
	"testing"
	"time"
)

// FuzzParseSessionExpires: any header value either parses into whole
// seconds and a refresher of uac, uas or none, which formats and parses
// back the same, or is an error; nothing panics.
func FuzzParseSessionExpires(f *testing.F) {
	for _, v := range []string{"90", "1800;refresher=uac", "300 ; Refresher = UAS", "4294967295", "4294967296", "-1", "90;refresher=proxy", "90;x=y;refresher=uas", "", ";refresher=uac"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d, refresher, err := parseSessionExpires(v)
		if err != nil {
			return
		}
		if d < 0 || d%time.Second != 0 || d > (1<<32-1)*time.Second {
			t.Fatalf("%q: interval %v", v, d)
		}
		if refresher != "" && refresher != "uac" && refresher != "uas" {
			t.Fatalf("%q: refresher %q", v, refresher)
		}
		again := fmt.Sprintf("%d", int64(d/time.Second))
		if refresher != "" {
			again += ";refresher=" + refresher
		}
		if d2, r2, err := parseSessionExpires(again); err != nil || d2 != d || r2 != refresher {
			t.Fatalf("%q parsed as %v %q; %q as %v %q %v", v, d, refresher, again, d2, r2, err)
		}
	})
}
