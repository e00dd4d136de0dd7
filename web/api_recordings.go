package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
)

// recordingJSON is a recording as the API shows it.
type recordingJSON struct {
	*callvault.Recording
	DurationSeconds float64 `json:"duration_seconds"`
	AudioURL        string  `json:"audio_url,omitempty"`
}

func (s *Server) toJSON(r *http.Request, rec *callvault.Recording) recordingJSON {
	if actor(r.Context()).Role() == callvault.RoleListener {
		// A listener gets only what is needed to play the call.
		rec = &callvault.Recording{ID: rec.ID, AcademyID: rec.AcademyID, Academy: rec.Academy, StartedAt: rec.StartedAt,
			EndedAt: rec.EndedAt, Duration: rec.Duration, Direction: rec.Direction, State: rec.State}
	}
	return recordingJSON{Recording: rec, DurationSeconds: rec.Duration.Seconds()}
}

// playable looks up the actor's grant for rec and decides with CanPlay. A
// missing grant is not an error: it is a no.
func (s *Server) playable(r *http.Request, rec *callvault.Recording) (*callvault.Grant, bool, error) {
	a := actor(r.Context())
	if a == nil || a.User == nil {
		return nil, false, nil
	}
	now := s.Now()
	g, err := s.Grants.ActiveGrant(r.Context(), a.User.ID, rec.ID, now)
	if callvault.ErrorCode(err) == callvault.ENOTFOUND {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	return g, callvault.CanPlay(a, rec, g, now), nil
}

// playURL mints a play token for this session when the actor may play rec.
func (s *Server) playURL(r *http.Request, rec *callvault.Recording) (string, *callvault.Grant, error) {
	g, ok, err := s.playable(r, rec)
	if err != nil || !ok || sessionHash(r) == "" {
		return "", g, err
	}
	tok := s.plays.mint(sessionHash(r), actor(r.Context()).User.ID, rec, g, s.Now())
	return audioURL(rec.ID, tok), g, nil
}

// ingest is POST /api/v1/recordings: multipart/form-data with a "metadata"
// JSON part followed by an "audio" file part, streamed straight through the
// archive (never buffered whole).
func (s *Server) ingest(w http.ResponseWriter, r *http.Request) {
	src := actor(r.Context()).Source
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		s.jsonError(w, r, callvault.Errorf(callvault.EUNSUPPORTED, "send multipart/form-data with a metadata part and an audio part"))
		return
	}
	max := s.Archive.MaxSize
	if max <= 0 {
		max = archive.DefaultMaxSize
	}
	r.Body = http.MaxBytesReader(w, r.Body, max+archive.MaxMetadataSize+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "the multipart body could not be read"))
		return
	}
	var meta *archive.Metadata
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.jsonError(w, r, multipartError(err))
			return
		}
		switch part.FormName() {
		case "metadata":
			if meta != nil {
				s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "more than one metadata part"))
				return
			}
			m, err := archive.DecodeMetadata(part)
			if err != nil {
				s.jsonError(w, r, err)
				return
			}
			meta = &m
		case "audio":
			if meta == nil {
				s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "the metadata part must come before the audio part"))
				return
			}
			if err := checkAudioPart(part); err != nil {
				s.jsonError(w, r, err)
				return
			}
			rec, created, err := s.Archive.Ingest(r.Context(), archive.IngestRequest{Source: src, Meta: *meta, Audio: &bodyErrReader{part}})
			if err != nil {
				s.jsonError(w, r, err)
				return
			}
			status := http.StatusOK
			if created {
				status = http.StatusCreated
				w.Header().Set("Location", "/api/v1/recordings/"+rec.ID)
			}
			writeJSON(w, status, map[string]any{"id": rec.ID, "created": created, "sha256": rec.SHA256,
				"duration_seconds": rec.Duration.Seconds(), "academy": rec.Academy})
			return
		default:
			s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "unexpected part %q: only metadata and audio", trim(part.FormName(), 40)))
			return
		}
	}
	s.jsonError(w, r, callvault.Errorf(callvault.EINVALID, "the audio part is missing"))
}

// checkAudioPart refuses parts that are plainly not audio, and file names
// that try to be paths (callvault never uses them, but a client sending one
// is confused or hostile).
func checkAudioPart(p *multipart.Part) error {
	ct := p.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(strings.HasPrefix(mt, "audio/") || mt == "application/octet-stream" || mt == "application/ogg") {
			return callvault.Errorf(callvault.EUNSUPPORTED, "the audio part has content type %q; send audio/wav, audio/ogg, audio/mpeg or application/octet-stream", trim(ct, 60))
		}
	}
	// FileName() strips directories; look at the raw parameter.
	_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
	name := params["filename"]
	if strings.ContainsAny(name, "/\\") || strings.Contains(name, "..") || strings.IndexFunc(name, unicode.IsControl) >= 0 || len(name) > 255 {
		return callvault.Errorf(callvault.EINVALID, "the audio file name must be a plain file name, not a path")
	}
	return nil
}

// bodyErrReader turns request-body failures into domain errors, so an
// over-limit body is 413 and a dropped connection is 400.
type bodyErrReader struct{ r io.Reader }

func (b *bodyErrReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = multipartError(err)
	}
	return n, err
}

func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return callvault.Errorf(callvault.ETOOLARGE, "the upload is larger than the limit")
	}
	return callvault.Wrap(callvault.EINVALID, err, "the multipart body is malformed or was cut short")
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// apiSearch is GET /api/v1/recordings.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !callvault.CanSearch(actor(ctx)) {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "your role cannot search recordings"))
		return
	}
	academies, err := s.Academies.FindAcademies(ctx)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	f, err := s.filter(readSearchForm(r.URL.Query()), academies)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	recs, total, next, err := s.Recordings.FindRecordings(ctx, f)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	noteSearch(r, len(recs), total)
	out := make([]recordingJSON, len(recs))
	for i, rec := range recs {
		out[i] = s.toJSON(r, rec)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"recordings":   out,
		"total":        total,
		"total_capped": total >= callvault.CountCap,
		"next":         next,
	})
}

// apiRecording is GET /api/v1/recordings/{id}.
func (s *Server) apiRecording(w http.ResponseWriter, r *http.Request) {
	rec, err := s.Recordings.FindRecordingByID(r.Context(), r.PathValue("id"))
	s.noteRecording(r, rec)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	j := s.toJSON(r, rec)
	if j.AudioURL, _, err = s.playURL(r, rec); err != nil {
		s.jsonError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// apiAudio streams a browser-playable rendition with Range support,
// decrypting only what is asked for. It is never an attachment and never
// cached.
func (s *Server) apiAudio(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	rec, err := s.Recordings.FindRecordingByID(ctx, r.PathValue("id"))
	s.noteRecording(r, rec)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	g, ok, err := s.playable(r, rec)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	if !ok {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "you may not play this recording: listening needs a current grant, decided by the CEO or the academy's Principal"))
		return
	}
	if _, ok := s.plays.check(r.URL.Query().Get("token"), sessionHash(r), actor(ctx).User.ID, rec.ID, s.Now()); !ok {
		s.jsonError(w, r, callvault.Errorf(callvault.EFORBIDDEN, "this audio link is not valid for your session; open the recording again"))
		return
	}
	callvault.NoteAudit(ctx, func(e *callvault.AuditEvent) {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["grant"] = strconv.FormatInt(g.ID, 10)
	})
	au, err := s.Archive.OpenAudio(ctx, rec)
	if err != nil {
		s.jsonError(w, r, err)
		return
	}
	defer au.Close()
	h := w.Header()
	h.Set("Content-Type", au.ContentType)
	h.Set("Content-Disposition", "inline")
	h.Set("Cache-Control", "no-store")
	h.Set("ETag", `"`+rec.SHA256[:16]+`"`)
	notePlay(r, rec, au.Size)
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(au, 0, au.Size))
}

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

// notePlay records which part of the recording is being sent: the Range
// asked for, and the time span it covers where the rendition is PCM.
func notePlay(r *http.Request, rec *callvault.Recording, size int64) {
	rng := r.Header.Get("Range")
	first, last := int64(0), size-1
	if rs, err := parseOneRange(rng, size); err == nil {
		first, last = rs[0], rs[1]
	}
	callvault.NoteAudit(r.Context(), func(e *callvault.AuditEvent) {
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details["range"] = trim(rng, 100)
		e.Details["bytes"] = fmt.Sprintf("%d-%d/%d", first, last, size)
		if rate := int64(rec.SampleRate * rec.Channels * 2); rate > 0 && (rec.Codec == "ulaw" || rec.Codec == "alaw" || rec.Codec == "pcm16") {
			from := max(first-44, 0) * 1000 / rate
			to := max(last-44, 0) * 1000 / rate
			e.Details["seconds"] = fmt.Sprintf("%.1f-%.1f", float64(from)/1000, float64(to)/1000)
		}
	})
}

// parseOneRange reads a single "bytes=a-b", "bytes=a-" or "bytes=-n" range
// for the audit entry; http.ServeContent does the real parsing.
func parseOneRange(h string, size int64) ([2]int64, error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return [2]int64{}, errors.New("not a single byte range")
	}
	a, b, _ := strings.Cut(spec, "-")
	var first, last int64
	var err error
	switch {
	case a == "":
		n, perr := strconv.ParseInt(b, 10, 64)
		first, last, err = size-n, size-1, perr
	default:
		first, err = strconv.ParseInt(a, 10, 64)
		last = size - 1
		if err == nil && b != "" {
			last, err = strconv.ParseInt(b, 10, 64)
		}
	}
	if err != nil || first < 0 || first >= size || last < first {
		return [2]int64{}, errors.New("unsatisfiable")
	}
	return [2]int64{first, min(last, size-1)}, nil
}
