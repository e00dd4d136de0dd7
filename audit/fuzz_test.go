package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzReadCheckpoints: ReadCheckpoints never panics, and whatever it
// accepts survives a write and a read unchanged (so a checkpoint file
// rewritten by a tool still verifies).
func FuzzReadCheckpoints(f *testing.F) {
	const one = `{"version":1,"seq":42,"hash":"` + goldenHash + `","time":"2026-11-27T09:30:15.123Z","key_id":"56475aa75463474c","signature":"ECZrtcVo19ft5e3k4HEhPuHkFHvPC4yGGk9SfcOG95RcgjvbDUOoUb34Ad56mMi/pnod4Yx/4Xb/Wi9e7ndaDg=="}`
	for _, s := range []string{
		"", one, one + "\n" + one + "\n", "[" + one + "," + one + "]", one[:60],
		`{"time":"2026-11-27T10:30:15+01:00"}`, "[null]", "null", `{"signature":null}`,
		strings.Replace(one, "Z", "-00:00", 1), `{"seq":-9223372036854775808,"time":"0000-01-01T00:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cps, err := ReadCheckpoints(bytes.NewReader(data))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		for _, c := range cps {
			line, err := checkpointLine(c)
			if err != nil {
				t.Fatalf("checkpointLine(%+v) = %v", c, err)
			}
			buf.Write(line)
		}
		again, err := ReadCheckpoints(&buf)
		if err != nil || !sameCheckpoints(cps, again) {
			t.Fatalf("ReadCheckpoints(%q) = %+v; written and read again = %+v, %v", data, cps, again, err)
		}
		for _, c := range cps {
			if _, err := json.Marshal(c); err != nil {
				t.Fatal(err)
			}
			c.Verify(make([]byte, 32)) // must not panic
			c.Message()
		}
	})
}
