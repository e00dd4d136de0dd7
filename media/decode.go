package media

import (
	"encoding/binary"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/audio"
)

// Decode decodes a stream's payloads, in order and with none missing, the
// way a session records them: at Rate, with the decoder's state carried
// from one payload to the next. encoding is an rtpmap encoding
// ("PCMA/8000", "G722/8000", "opus/48000/2"). It is the reference a test or
// a deployment check compares a recording with; an encoding the recorder
// cannot decode is EUNSUPPORTED, and a payload that does not decode is
// EINVALID.
func Decode(encoding string, payloads [][]byte) ([]int16, error) {
	c, _, ok := parseEncoding(encoding)
	if !ok || !c.audio() {
		return nil, callvault.Errorf(callvault.EUNSUPPORTED, "media: cannot decode %q", encoding)
	}
	var st Stream // only its decoders and buffer are used
	var out []int16
	for i, p := range payloads {
		if len(p) > maxPayload {
			return nil, callvault.Errorf(callvault.EINVALID, "media: payload %d is %d bytes, more than %d", i, len(p), maxPayload)
		}
		pcm, ok := st.decode(c, p)
		if !ok {
			return nil, callvault.Errorf(callvault.EINVALID, "media: %s payload %d does not decode", codecNames[c], i)
		}
		for k := 0; k+1 < len(pcm); k += 2 {
			out = append(out, int16(binary.LittleEndian.Uint16(pcm[k:])))
		}
	}
	return out, nil
}

// decode decodes one audio payload of codec c into the stream's buffer, as
// PCM16 little-endian at Rate, keeping the codec's state for the next one.
// It returns false for an Opus packet the decoder refuses.
func (st *Stream) decode(c codec, p []byte) ([]byte, bool) {
	switch c {
	case codecPCMU:
		return decodeG711(st.pcm[:], p, &ulawPCM), true
	case codecPCMA:
		return decodeG711(st.pcm[:], p, &alawPCM), true
	case codecG722:
		if st.g722 == nil {
			st.g722 = audio.NewG722Decoder(Rate)
		}
		return st.g722.DecodeLE(st.pcm[:0], p), true
	case codecOpus:
		if st.opus == nil {
			st.opus = newOpusDecoder()
		}
		return st.opus.decode(st.pcm[:], p)
	}
	return nil, false
}
