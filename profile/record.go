package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// recordMaxBytes bounds a record: they are small summaries, and one read
// back must never take much memory.
const recordMaxBytes = 1 << 20

// WriteRecord replaces the record name in the store's directory with data,
// atomically and durably: a reader, or the next process after a crash of
// the process or of the machine, sees the old record or the new one, never
// a mix. Records are small files the store keeps beside the profiles, such
// as the guard's state record; they are not profiles, are not listed or
// served, and do not count against MaxCount or MaxBytes. name must be a
// plain file name ending in ".json" and not starting with "heap-".
func (s *Store) WriteRecord(name string, data []byte) error {
	return s.writeRecord(name, data, true)
}

// RefreshRecord is WriteRecord without waiting for the disk, for a record
// rewritten often: while the machine runs, every reader (the next process
// after this one is killed included) sees the old record or the new one,
// never a mix; after a crash of the machine itself, the old one may be
// found, or none. Each fsync waits for a flush of the disk, hundreds of
// milliseconds on a busy one; a record synced every second beside a cache
// near its GOMEMLIMIT raised the service's p99 (see the guard's state
// record).
func (s *Store) RefreshRecord(name string, data []byte) error {
	return s.writeRecord(name, data, false)
}

func (s *Store) writeRecord(name string, data []byte, durable bool) error {
	if err := checkRecordName(name); err != nil {
		return err
	}
	if len(data) > recordMaxBytes {
		return fmt.Errorf("profile: record %q of %d bytes, more than %d", name, len(data), recordMaxBytes)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return err
	}
	tmp, _, err := s.writeTemp(func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, durable)
	if err != nil {
		return fmt.Errorf("profile: record %q: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("profile: record %q: %w", name, err)
	}
	if !durable {
		return nil
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("profile: record %q: %w", name, err)
	}
	return nil
}

// ReadRecord returns the record name, or an error wrapping os.ErrNotExist
// when there is none. A record that is not a regular file, such as a
// symbolic link or a FIFO put in its place, is refused, never followed or
// waited on.
func (s *Store) ReadRecord(name string) ([]byte, error) {
	if err := checkRecordName(name); err != nil {
		return nil, err
	}
	f, _, err := openRegular(filepath.Join(s.dir, name))
	if err != nil {
		return nil, fmt.Errorf("profile: record %q: %w", name, err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := io.Copy(&b, io.LimitReader(f, recordMaxBytes+1)); err != nil {
		return nil, fmt.Errorf("profile: record %q: %w", name, err)
	}
	if b.Len() > recordMaxBytes {
		return nil, fmt.Errorf("profile: record %q is larger than %d bytes", name, recordMaxBytes)
	}
	return b.Bytes(), nil
}

func checkRecordName(name string) error {
	if name == "" || name != filepath.Base(name) || filepath.Ext(name) != metaSuffix ||
		len(name) > maxNameLen || name[0] == '.' || isStoreName(name) {
		return errors.New("profile: bad record name " + fmt.Sprintf("%q", name))
	}
	return nil
}

// isStoreName reports a name that starts like a profile's.
func isStoreName(name string) bool {
	for _, k := range kinds {
		if strings.HasPrefix(name, k.prefix) {
			return true
		}
	}
	return false
}
