//go:build !linux

package media

// Outside Linux every stream has a goroutine of its own (see Stream.run).

type reader struct{}

func (*reader) remove(*Stream) {}

func (st *Stream) attach() bool { return false }

func (st *Stream) detach(bool) {}

func (st *Stream) collect() {}

func (st *Stream) closeFD() error { return nil }
