//go:build windows || plan9

package audit

import (
	"context"
	"errors"
)

// SyslogExporter would send checkpoints to syslog, which this platform
// does not have: Export always fails.
type SyslogExporter struct {
	Network string
	Addr    string
	Tag     string
}

func (s *SyslogExporter) String() string { return "syslog (unsupported)" }

// Export fails: there is no log/syslog on this platform.
func (s *SyslogExporter) Export(ctx context.Context, c *Checkpoint) error {
	return errors.New("syslog is not available on this platform")
}
