package audio_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
	"github.com/zaf/g711"
)

func TestWriteWAV(t *testing.T) {
	left := audio.SpeechLike(1, 8001, 8000) // odd: the µ-law data needs a pad byte
	right := audio.SpeechLike(2, 8001, 8000)
	tests := []struct {
		codec  string
		chans  [][]int16
		offset int64
		encode func(int16) []byte
	}{
		{"pcm16", [][]int16{left}, 44, func(s int16) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(s)) }},
		{"pcm16", [][]int16{left, right}, 44, func(s int16) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(s)) }},
		{"ulaw", [][]int16{left}, 58, func(s int16) []byte { return []byte{g711.EncodeUlawFrame(s)} }},
		{"alaw", [][]int16{left, right}, 58, func(s int16) []byte { return []byte{g711.EncodeAlawFrame(s)} }},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := audio.WriteWAV(&buf, tt.codec, 8000, tt.chans...); err != nil {
			t.Fatalf("WriteWAV(%s, %d channels): %v", tt.codec, len(tt.chans), err)
		}
		b := buf.Bytes()
		var data []byte
		for i := range tt.chans[0] {
			for _, c := range tt.chans {
				data = append(data, tt.encode(c[i])...)
			}
		}
		want := audio.Info{Format: "wav", Codec: tt.codec, SampleRate: 8000, Channels: len(tt.chans),
			Duration: 8001 * time.Second / 8000, DataOffset: tt.offset, DataSize: int64(len(data))}
		got, err := probe(b)
		if err != nil || got != want {
			t.Errorf("Probe(WriteWAV(%s, %d channels)) = %+v, %v; want %+v", tt.codec, len(tt.chans), got, err, want)
			continue
		}
		if !bytes.Equal(b[got.DataOffset:got.DataOffset+got.DataSize], data) {
			t.Errorf("WriteWAV(%s, %d channels) wrote other samples", tt.codec, len(tt.chans))
		}
		if pad := int64(len(b)) - got.DataOffset - got.DataSize; pad != int64(len(data)%2) {
			t.Errorf("WriteWAV(%s, %d channels) left %d bytes after the data", tt.codec, len(tt.chans), pad)
		}
	}
}

func TestWriteWAVErrors(t *testing.T) {
	s := make([]int16, 10)
	tests := []struct {
		name  string
		codec string
		rate  int
		chans [][]int16
	}{
		{"codec", "opus", 8000, [][]int16{s}},
		{"no channels", "pcm16", 8000, nil},
		{"3 channels", "pcm16", 8000, [][]int16{s, s, s}},
		{"unequal", "ulaw", 8000, [][]int16{s, s[:9]}},
		{"rate", "alaw", 0, [][]int16{s}},
	}
	for _, tt := range tests {
		err := audio.WriteWAV(new(bytes.Buffer), tt.codec, tt.rate, tt.chans...)
		if callvault.ErrorCode(err) != callvault.EINVALID {
			t.Errorf("WriteWAV(%s) = %v, want EINVALID", tt.name, err)
		}
	}
	boom := errors.New("disk full")
	if err := audio.WriteWAV(failingWriter{boom}, "ulaw", 8000, s); !errors.Is(err, boom) {
		t.Errorf("WriteWAV(failing writer) = %v, want %v", err, boom)
	}
}

type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }
