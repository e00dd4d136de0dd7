package audio_test

import (
	"fmt"
	"io"
	"log"
	"os"

	"github.com/callvault/callvault/audio"
)

func Example() {
	f, err := os.Open("testdata/ulaw_8k_mono.wav")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		log.Fatal(err)
	}

	info, err := audio.Probe(f, fi.Size())
	if err != nil {
		log.Fatal(err) // EINVALID or EUNSUPPORTED: tell the uploader
	}
	fmt.Println(info.Format, info.Codec, info.SampleRate, info.Channels, info.Duration)

	r, size, contentType, err := audio.Rendition(f, fi.Size(), info)
	if err != nil {
		log.Fatal(err)
	}
	// A handler would now call
	//	http.ServeContent(w, req, "", modTime, io.NewSectionReader(r, 0, size))
	// with the Content-Type set, and Range requests decode only what they ask for.
	head := make([]byte, 4)
	if _, err := io.NewSectionReader(r, 0, size).Read(head); err != nil {
		log.Fatal(err)
	}
	fmt.Println(contentType, size, string(head))
	// Output:
	// wav ulaw 8000 1 1.5s
	// audio/wav 24044 RIFF
}
