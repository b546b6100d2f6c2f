package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// archiveTime is every entry's modification time. A fixed time makes the
// archives (and so the sha256 in the Krew manifest) depend only on their
// contents: rebuilding a release from the same commit gives the same sums.
var archiveTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ArchiveFile is one regular file at the top of a release archive; Krew's
// manifest copies files by these names.
type ArchiveFile struct {
	Name string
	Mode fs.FileMode
	Data []byte
}

// WriteTarGz writes files as a gzip-compressed tar.
func WriteTarGz(w io.Writer, files []ArchiveFile) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	for _, f := range files {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg, Name: f.Name, Mode: int64(f.Mode.Perm()), Size: int64(len(f.Data)),
			ModTime: archiveTime, Uname: "root", Gname: "root", Format: tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// WriteZip writes files as a deflated zip.
func WriteZip(w io.Writer, files []ArchiveFile) error {
	zw := zip.NewWriter(w)
	for _, f := range files {
		hdr := &zip.FileHeader{Name: f.Name, Method: zip.Deflate, Modified: archiveTime}
		hdr.SetMode(f.Mode.Perm())
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		if _, err := fw.Write(f.Data); err != nil {
			return err
		}
	}
	return zw.Close()
}

// ReadArchive returns the regular files of a release archive (tar.gz or zip
// by name), so checks can look inside what users download.
func ReadArchive(name string, data []byte) ([]ArchiveFile, error) {
	var out []ArchiveFile
	switch {
	case strings.HasSuffix(name, ".zip"):
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, f := range zr.File {
			if f.FileInfo().IsDir() {
				continue
			}
			rc, err := f.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, f.Name, err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, f.Name, err)
			}
			out = append(out, ArchiveFile{Name: f.Name, Mode: f.Mode().Perm(), Data: b})
		}
	case strings.HasSuffix(name, ".tar.gz"):
		gz, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		tr := tar.NewReader(gz)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if hdr.Typeflag != tar.TypeReg {
				continue
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", name, hdr.Name, err)
			}
			out = append(out, ArchiveFile{Name: hdr.Name, Mode: fs.FileMode(hdr.Mode).Perm(), Data: b})
		}
	default:
		return nil, fmt.Errorf("%s: not a .tar.gz or .zip archive", name)
	}
	return out, nil
}
