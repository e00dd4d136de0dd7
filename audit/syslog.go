//go:build !windows && !plan9

package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/syslog"
)

// SyslogExporter sends each checkpoint as one syslog message (facility
// auth, severity notice) whose text is the checkpoint's JSON. Point it at a
// remote collector the database administrator does not control. Network and
// Addr as for syslog.Dial: both empty for the local syslog daemon, otherwise
// "udp", "tcp" or "unix" and an address.
type SyslogExporter struct {
	Network string
	Addr    string
	Tag     string // default "callvault-audit"
}

func (s *SyslogExporter) String() string {
	if s.Addr == "" {
		return "local syslog"
	}
	return "syslog " + s.Network + "://" + s.Addr
}

// Export connects, sends one message and disconnects: checkpoints are a few
// an hour, and a fresh connection survives collector restarts. log/syslog
// takes no context, so over TCP an unreachable collector can hold Export
// for the system's connect timeout; UDP never blocks (and never confirms).
func (s *SyslogExporter) Export(ctx context.Context, c *Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	js, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tag := s.Tag
	if tag == "" {
		tag = "callvault-audit"
	}
	w, err := syslog.Dial(s.Network, s.Addr, syslog.LOG_AUTH|syslog.LOG_NOTICE, tag)
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	err = w.Notice(string(js))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s, err)
	}
	return nil
}
