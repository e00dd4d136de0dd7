package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/callvault/callvault"
	"github.com/callvault/callvault/archive"
)

func importCmd(e *env) *ffcli.Command {
	var meta, source string
	return e.command(spec{
		name: "import", usage: "callvault import [flags] FILE...", short: "Import recordings from files",
		long: "Import WAV, Ogg Opus or MP3 files, encrypting them into the archive, and print each new recording's id.\nImporting the same file again prints the existing id (idempotent).",
		args: "at least one file", minArgs: 1, maxArgs: -1,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&meta, "meta", "", "metadata JSON applied to every file (see /api/v1/openapi.json); source_ref defaults to the file's SHA-256 and started_at to its modification time")
			fs.StringVar(&source, "source", "import", "name of the ingest source the files are filed under")
		},
		run: func(ctx context.Context, dep *deployment, files []string) error {
			src, err := dep.findOrCreateSource(ctx, source, callvault.SourceImport)
			if err != nil {
				return err
			}
			failed := 0
			for _, name := range files {
				id, created, err := importFile(ctx, dep, src, name, meta)
				switch {
				case err != nil:
					failed++
					fmt.Fprintf(e.stderr, "%s: %s\n", name, callvault.ErrorMessage(err))
					if callvault.ErrorCode(err) == callvault.EINTERNAL {
						e.logger.Error("import failed", "file", name, "err", err)
					}
				case created:
					fmt.Fprintf(e.stdout, "%s\t%s\n", id, name)
				default:
					fmt.Fprintf(e.stdout, "%s\t%s\t(already stored)\n", id, name)
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d files were not imported", failed, len(files))
			}
			return nil
		},
	})
}

func importFile(ctx context.Context, dep *deployment, src *callvault.Source, name, metaJSON string) (string, bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", false, callvault.Wrap(callvault.EINVALID, err, "cannot open: "+err.Error())
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", false, err
	}
	if !st.Mode().IsRegular() {
		return "", false, callvault.Errorf(callvault.EINVALID, "not a regular file")
	}
	var m archive.Metadata
	if metaJSON != "" {
		// Validate later, once defaults are filled in.
		if m, err = archive.DecodeMetadataPartial(strings.NewReader(metaJSON)); err != nil {
			return "", false, err
		}
	}
	if m.SourceRef == "" {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return "", false, err
		}
		m.SourceRef = "sha256:" + hex.EncodeToString(h.Sum(nil))
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", false, err
		}
	}
	if m.StartedAt.IsZero() {
		m.StartedAt = st.ModTime().UTC().Truncate(time.Second)
	}
	var rec *callvault.Recording
	var created bool
	err = dep.audited(ctx, callvault.AuditEvent{Action: "recording.ingest", Details: map[string]string{"file": trimTo(name, 300)}},
		func(ctx context.Context) (err error) {
			rec, created, err = dep.archive.Ingest(ctx, archive.IngestRequest{Source: src, Meta: m, Audio: f})
			return err
		})
	if err != nil {
		return "", false, err
	}
	return rec.ID, created, nil
}
