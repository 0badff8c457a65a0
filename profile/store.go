package profile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options fields left zero.
const (
	DefaultMinInterval = 10 * time.Second
	DefaultMaxCount    = 20
	DefaultMaxBytes    = 256 << 20 // as CockroachDB's heap profiler
)

var (
	// ErrTooSoon is returned, wrapped, by a write that comes less than
	// Options.MinInterval after the previous one.
	ErrTooSoon = errors.New("profile: write too soon after the previous one")

	// ErrFull is returned, wrapped, by a write on demand (Meta.OnDemand)
	// that could stay within MaxCount and MaxBytes only by deleting kept
	// profiles (Meta.Kept); nothing is left written. An HTTP handler
	// answers it with 507 Insufficient Storage: the store works, but what
	// it keeps leaves no room.
	ErrFull = errors.New("no room for a profile on demand without deleting kept ones")

	// ErrNotFound is returned, wrapped, for a name that is not in the index.
	ErrNotFound = errors.New("no such profile in the store")

	// ErrLocked is returned, wrapped, by Open while another Store, in this
	// process or another, has the directory open.
	ErrLocked = errors.New("in use by another Store")

	// ErrUnsafeDir is returned, wrapped, by Open for a directory that
	// group or others may write in, or a symbolic link in its place: see
	// Options.Dir.
	ErrUnsafeDir = errors.New("unsafe directory for profiles")

	// errNotRegular is returned, wrapped, for a file in the directory that
	// is not a regular file: a symbolic link, a FIFO, a device, a socket or
	// a directory.
	errNotRegular = errors.New("not a regular file")
)

// lockName is the file in the directory that an open Store holds a lock
// on. It is never deleted: a Store that deleted it could unlock the
// directory for a third while a second still waits on the old file.
const lockName = ".lock"

// metaMaxBytes bounds the sidecar read for each profile at Open: the store
// writes a few hundred bytes, and a file planted in the directory must not
// cost memory.
const metaMaxBytes = 64 << 10

// Options configures a Store. The zero value of every field but Dir selects
// its default.
type Options struct {
	// Dir is the directory that holds the profiles. Required. It is created
	// with mode 0750 if missing; profiles are written with mode 0600. Files
	// in it that are not the store's are left alone.
	//
	// Only one Store may use a directory at a time, since each deletes
	// the other's temporary files and replaces its records: Open takes an
	// exclusive lock (flock) on the file .lock in Dir, held until Close,
	// and returns an error wrapping ErrLocked while another Store, in this
	// process or another, holds it. Where flock is missing (Windows among
	// others) no lock is taken. A directory this process cannot create
	// .lock in, as a read-only one, is opened without the lock when there
	// is none: such a store can serve but not write.
	//
	// Open refuses, with an error wrapping ErrUnsafeDir, a Dir that is a
	// symbolic link or, on Unix, a directory that group or others may
	// write in (mode & 0o022 != 0, as a Kubernetes emptyDir's 0777):
	// whoever can write there can plant files the store reads at Open and
	// swap those it serves. Use a directory of mode 0750 or stricter, such
	// as one the store creates inside the volume.
	Dir string

	// MinInterval is the minimum time between the starts of two writes,
	// failed ones included, so that a failing disk is not hammered. After
	// Open it is measured from the newest profile in Dir, so a crash loop
	// does not rotate away the profiles of the first crash. A write inside
	// the interval returns an error wrapping ErrTooSoon unless Meta.Force is
	// set. Zero means DefaultMinInterval (10s); negative means no minimum.
	MinInterval time.Duration

	// MaxCount is the most profiles kept. Zero means DefaultMaxCount (20).
	MaxCount int

	// MaxBytes caps the total size in bytes of the profiles and their
	// metadata files. Zero means DefaultMaxBytes (256 MiB).
	MaxBytes int64

	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Stats counts what a Store has done since Open.
type Stats struct {
	Written int64 // profiles stored
	Failed  int64 // writes that failed, and old profiles that could not be deleted
	TooSoon int64 // writes refused by MinInterval
	Removed int64 // old profiles deleted to honour MaxCount and MaxBytes
}

// A Store keeps heap profiles in a directory, bounded in count and size.
// Its methods are safe for concurrent use; writes run one at a time.
type Store struct {
	dir         string
	minInterval time.Duration
	maxCount    int
	maxBytes    int64
	now         func() time.Time

	// writeMu serializes writes. It is held for a whole write, which may take
	// milliseconds, so that List and Open (which take only mu) never wait on
	// the disk.
	writeMu sync.Mutex
	lastTry time.Time // start of the previous write
	nextSeq uint64

	mu      sync.Mutex
	entries []entry // oldest first
	bytes   int64   // sum of entries' disk

	written, failed, tooSoon, removed atomic.Int64

	// diffing is set while a handler of the store computes a diff.
	diffing atomic.Bool

	// closeMu is held for reading by every write, and for writing by
	// Close, so that no write runs after the lock is released.
	closeMu sync.RWMutex
	closed  bool
	lock    *os.File // holds the directory's lock; nil where none is taken
}

// entry is one indexed profile.
type entry struct {
	meta Meta
	seq  uint64
	disk int64 // bytes on disk: profile and sidecar
}

// Open returns a Store for opts.Dir, creating the directory if needed, and
// locks the directory until Close (see Options.Dir). It indexes the
// profiles already in the directory, including those left by a previous
// process, and deletes leftover temporary files. It does not apply MaxCount
// or MaxBytes to the profiles it finds: only a new write deletes old
// profiles. It passes over a file the store would not have kept: one
// larger than MaxBytes, or a heap or goroutine profile larger than
// MaxProfileBytes.
func Open(opts Options) (*Store, error) {
	switch {
	case opts.Dir == "":
		return nil, errors.New("profile: Options.Dir is empty")
	case opts.MaxCount < 0:
		return nil, fmt.Errorf("profile: Options.MaxCount is %d, want >= 0", opts.MaxCount)
	case opts.MaxBytes < 0:
		return nil, fmt.Errorf("profile: Options.MaxBytes is %d, want >= 0", opts.MaxBytes)
	}
	// An absolute path keeps the store working if the process changes
	// its working directory.
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("profile: Options.Dir %q: %w", opts.Dir, err)
	}
	s := &Store{
		dir:         dir,
		minInterval: opts.MinInterval,
		maxCount:    opts.MaxCount,
		maxBytes:    opts.MaxBytes,
		now:         opts.Now,
		nextSeq:     1,
	}
	if s.minInterval == 0 {
		s.minInterval = DefaultMinInterval
	}
	if s.maxCount == 0 {
		s.maxCount = DefaultMaxCount
	}
	if s.maxBytes == 0 {
		s.maxBytes = DefaultMaxBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := makeDir(dir); err != nil {
		return nil, err
	}
	// Before load, which deletes temporary files: they may be another
	// Store's writes under way.
	if s.lock, err = lockDir(dir); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		s.Close()
		return nil, fmt.Errorf("profile: %w", err)
	}
	return s, nil
}

// Close releases the directory's lock, so that another Store may open it.
// Writes after Close fail with an error wrapping fs.ErrClosed; the profiles
// indexed can still be listed, opened and parsed. Close waits for a write
// under way, and is safe to call more than once.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed || s.lock == nil {
		s.closed = true
		return nil
	}
	s.closed = true
	if err := s.lock.Close(); err != nil {
		return fmt.Errorf("profile: unlock %s: %w", s.dir, err)
	}
	return nil
}

// checkOpen returns an error wrapping fs.ErrClosed after Close. The caller
// holds closeMu for reading.
func (s *Store) checkOpen() error {
	if s.closed {
		return fmt.Errorf("profile: write to the store of %s after Close: %w", s.dir, fs.ErrClosed)
	}
	return nil
}

// makeDir creates dir with mode 0750 if it is missing, and checks that it
// is fit to hold the profiles (see Options.Dir).
func makeDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		fi, err = os.Lstat(dir)
	}
	switch {
	case err != nil:
		return fmt.Errorf("profile: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("profile: Options.Dir %q is a symbolic link: %w: whoever can replace the link chooses the directory; name the directory it points to", dir, ErrUnsafeDir)
	case !fi.IsDir():
		return fmt.Errorf("profile: Options.Dir %q is not a directory (mode %v)", dir, fi.Mode())
	}
	return checkDirMode(dir, fi)
}

// load indexes the profiles in s.dir and removes leftovers of interrupted
// writes.
func (s *Store) load() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return err
	}
	var sidecars []string
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, tempPrefix) {
			// Best effort: a read-only directory can still be served.
			os.Remove(filepath.Join(s.dir, name))
			continue
		}
		if _, _, _, ok := parseName(name, metaSuffix); ok {
			sidecars = append(sidecars, name)
			continue
		}
		kind, t, seq, ok := parseName(name, "")
		if !ok || !de.Type().IsRegular() { // symlinks are never served
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue // deleted meanwhile
		}
		if info.Size() > s.maxBytes || kind != KindTrace && info.Size() > maxFileBytes {
			continue // larger than the store keeps: not one it wrote
		}
		e := s.loadEntry(name, t, seq, info.Size())
		if kind != KindHeap {
			e.meta.Kind = kind
		}
		s.entries = append(s.entries, e)
	}
	for _, name := range sidecars {
		// A sidecar without its profile is what a crash between the two
		// renames of a write leaves.
		if _, ok := s.lookup(profileOf(name)); !ok {
			os.Remove(filepath.Join(s.dir, name))
		}
	}
	// sort.Slice rather than slices.SortFunc, which would compile a
	// copy of its sort for this struct: 20 KB in every service's binary.
	sort.Slice(s.entries, func(i, j int) bool { return s.entries[i].seq < s.entries[j].seq })
	for _, e := range s.entries {
		s.bytes += e.disk
		s.nextSeq = max(s.nextSeq, e.seq+1)
	}
	if n := len(s.entries); n > 0 {
		// The store's clock named the file; Meta.Time may be the caller's.
		_, s.lastTry, _, _ = parseName(s.entries[n-1].meta.Name, "")
	}
	return nil
}

// loadEntry returns the index entry of the profile called name found on disk.
// A missing or unreadable sidecar costs only the metadata, not the profile;
// so does one that is not a regular file or is larger than metaMaxBytes.
func (s *Store) loadEntry(name string, t time.Time, seq uint64, size int64) entry {
	e := entry{seq: seq, disk: size}
	if b, err := readSidecar(filepath.Join(s.dir, metaName(name))); err == nil && json.Unmarshal(b, &e.meta) == nil {
		e.disk += int64(len(b))
	}
	e.meta.Name = name
	e.meta.Size = size
	e.meta.Kept = false // a mark of the process that set it
	if e.meta.Time.IsZero() {
		e.meta.Time = t
	}
	return e
}

// readSidecar returns the content of the sidecar at path if it is a regular
// file of at most metaMaxBytes.
func readSidecar(path string) ([]byte, error) {
	f, fi, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > metaMaxBytes {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, fi.Size(), metaMaxBytes)
	}
	// The size may change after the Stat: the read is bounded too.
	b, err := io.ReadAll(io.LimitReader(f, metaMaxBytes+1))
	if err == nil && len(b) > metaMaxBytes {
		err = fmt.Errorf("%s: more than %d bytes", path, metaMaxBytes)
	}
	return b, err
}

// checkRegular returns f, just opened, and its FileInfo if it is a regular
// file; otherwise it closes f and returns an error wrapping errNotRegular.
func checkRegular(f *os.File) (*os.File, os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w (mode %v)", f.Name(), errNotRegular, fi.Mode())
	}
	return f, fi, nil
}

// symlinkError returns the error of an open with O_NOFOLLOW, err, as one
// wrapping errNotRegular when path is a symbolic link: the errno for that
// differs between systems (ELOOP, EMLINK, EFTYPE).
func symlinkError(path string, err error) error {
	if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s: %w: a symbolic link", path, errNotRegular)
	}
	return err
}

// Write stores a heap profile taken with pprof.Lookup("heap").WriteTo(w, 0)
// and described by m. See WriteFrom.
func (s *Store) Write(m Meta) (Meta, error) {
	return s.WriteFrom(m, func(w io.Writer) error {
		return pprof.Lookup("heap").WriteTo(w, 0)
	})
}

// WriteFrom stores the profile that write produces, described by m, and
// returns m with Name, Size and, if it was zero, Time filled in.
//
// The profile goes to a temporary file that is synced and then renamed, so a
// failed or interrupted write leaves nothing under a profile name. After a
// successful write, the oldest profiles are deleted until MaxCount and
// MaxBytes hold; a write on demand (Meta.OnDemand) deletes only profiles
// not kept, and fails with ErrFull when those leave no room. A profile
// that alone exceeds MaxBytes, or a heap or goroutine profile larger than
// MaxProfileBytes, is deleted again and an error returned. Writes run one
// at a time; a second one waits for the first.
func (s *Store) WriteFrom(m Meta, write func(io.Writer) error) (Meta, error) {
	if write == nil {
		return Meta{}, errors.New("profile: WriteFrom with a nil write function")
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if err := s.checkOpen(); err != nil {
		return Meta{}, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	now := s.now()
	if !m.Force && s.minInterval > 0 && !s.lastTry.IsZero() {
		// A clock that went backwards does not block writes.
		if d := now.Sub(s.lastTry); d >= 0 && d < s.minInterval {
			s.tooSoon.Add(1)
			return Meta{}, fmt.Errorf("%w: %v after it, minimum %v", ErrTooSoon, d, s.minInterval)
		}
	}
	onDemand := m.OnDemand
	if onDemand {
		if err := s.roomOnDemand(); err != nil {
			return Meta{}, err
		}
	}
	s.lastTry = now
	seq := s.nextSeq
	s.nextSeq++ // even on failure: a half-failed write may leave the name behind

	m.Force, m.OnDemand, m.Kept = false, false, false
	if _, _, ok := kindOf(m.Kind); !ok {
		return Meta{}, fmt.Errorf("profile: unknown kind %q (want heap, goroutine or trace)", m.Kind)
	}
	if m.Kind == KindHeap {
		m.Kind = ""
	}
	m.Name = profileName(m.Kind, now, seq)
	if m.Time.IsZero() {
		m.Time = now
	}
	m.Time = m.Time.Round(0).UTC() // as it reads back after a restart

	e, err := s.writeFiles(m, write)
	if err == nil {
		e.seq = seq
		err = s.add(e, onDemand)
	}
	if err != nil {
		if !errors.Is(err, ErrFull) { // a refusal, as ErrTooSoon is
			s.failed.Add(1)
		}
		return Meta{}, err
	}
	s.written.Add(1)
	return e.meta, nil
}

// writeFiles writes the profile and its sidecar and renames them into place,
// the sidecar first, so that a visible profile always has its metadata. On
// error it removes what it wrote.
func (s *Store) writeFiles(m Meta, write func(io.Writer) error) (entry, error) {
	fail := func(err error) (entry, error) {
		return entry{}, fmt.Errorf("profile: write %s: %w", m.Name, err)
	}
	profTemp, size, err := s.writeTemp(write, true)
	if err != nil {
		return fail(err)
	}
	m.Size = size
	side, err := json.Marshal(m)
	if err != nil {
		os.Remove(profTemp)
		return fail(err)
	}
	sideTemp, _, err := s.writeTemp(func(w io.Writer) error {
		_, err := w.Write(side)
		return err
	}, true)
	if err != nil {
		os.Remove(profTemp)
		return fail(err)
	}

	profPath := filepath.Join(s.dir, m.Name)
	sidePath := filepath.Join(s.dir, metaName(m.Name))
	if err := os.Rename(sideTemp, sidePath); err != nil {
		os.Remove(sideTemp)
		os.Remove(profTemp)
		return fail(err)
	}
	if err := os.Rename(profTemp, profPath); err != nil {
		os.Remove(sidePath)
		os.Remove(profTemp)
		return fail(err)
	}
	if err := syncDir(s.dir); err != nil {
		os.Remove(profPath)
		os.Remove(sidePath)
		return fail(err)
	}
	return entry{meta: m, disk: size + int64(len(side))}, nil
}

// writeTemp writes a new temporary file in s.dir with write, syncs it if
// sync is set, closes it, and returns its path and size. On error it
// removes the file.
func (s *Store) writeTemp(write func(io.Writer) error, sync bool) (path string, size int64, err error) {
	f, err := os.CreateTemp(s.dir, tempPrefix+"*")
	if err != nil {
		return "", 0, err
	}
	w := &countingWriter{w: f}
	err = write(w)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), w.n, nil
}

// roomOnDemand returns an error wrapping ErrFull when the kept profiles
// alone leave a write on demand no room, so that it is refused before the
// profile is taken.
func (s *Store) roomOnDemand() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, bytes := 0, int64(0)
	for _, e := range s.entries {
		if e.meta.Kept {
			n++
			bytes += e.disk
		}
	}
	if n >= s.maxCount || bytes >= s.maxBytes {
		return fmt.Errorf("profile: %w: %d of MaxCount %d profiles and %d of MaxBytes %d bytes are kept", ErrFull, n, s.maxCount, bytes, s.maxBytes)
	}
	return nil
}

// add indexes the newly written e and deletes the oldest profiles until
// MaxCount and MaxBytes hold; for a write on demand, the oldest not kept,
// and if those are not enough it deletes e instead.
func (s *Store) add(e entry, onDemand bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.disk > s.maxBytes {
		// Keeping it would break the cap even after deleting every
		// older profile.
		s.removeFiles(e.meta.Name)
		return fmt.Errorf("profile: %s takes %d bytes, more than MaxBytes %d", e.meta.Name, e.disk, s.maxBytes)
	}
	if e.meta.Kind != KindTrace && e.meta.Size > maxFileBytes {
		// Open would not index it, nor Parse read it.
		s.removeFiles(e.meta.Name)
		return fmt.Errorf("profile: %s takes %d bytes, more than %d (MaxProfileBytes)", e.meta.Name, e.meta.Size, maxFileBytes)
	}
	if onDemand {
		// Whether the profiles not kept make room, before any is deleted.
		n, bytes := len(s.entries)+1, s.bytes+e.disk
		for _, old := range s.entries {
			if n <= s.maxCount && bytes <= s.maxBytes {
				break
			}
			if !old.meta.Kept {
				n, bytes = n-1, bytes-old.disk
			}
		}
		if n > s.maxCount || bytes > s.maxBytes {
			s.removeFiles(e.meta.Name)
			return fmt.Errorf("profile: %s, of %d bytes, deleted again: %w", e.meta.Name, e.disk, ErrFull)
		}
	}
	s.entries = append(s.entries, e)
	s.bytes += e.disk
	for len(s.entries) > s.maxCount || s.bytes > s.maxBytes {
		i := 0
		for onDemand && i < len(s.entries)-1 && s.entries[i].meta.Kept {
			i++
		}
		if i == len(s.entries)-1 {
			break // e itself: the check above keeps this from happening
		}
		old := s.entries[i]
		if err := s.removeFiles(old.meta.Name); err != nil {
			// It is still on disk, so it stays indexed; the next
			// write tries again.
			s.failed.Add(1)
			break
		}
		s.entries = slices.Delete(s.entries, i, i+1)
		s.bytes -= old.disk
		s.removed.Add(1)
	}
	return nil
}

// removeFiles deletes the profile called name and its sidecar. Only a
// failure to delete the profile is an error: a stray sidecar is removed by
// the next Open.
func (s *Store) removeFiles(name string) error {
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	os.Remove(filepath.Join(s.dir, metaName(name)))
	return nil
}

// List returns the metadata of the stored profiles, oldest first.
func (s *Store) List() []Meta {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := make([]Meta, len(s.entries))
	for i, e := range s.entries {
		ms[i] = e.meta
	}
	return ms
}

// Latest returns the metadata of the newest heap profile, and false if the store
// is empty.
func (s *Store) Latest() (Meta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.entries) - 1; i >= 0; i-- {
		if m := s.entries[i].meta; m.Kind == "" || m.Kind == KindHeap {
			return m, true
		}
	}
	return Meta{}, false
}

// Open opens the stored profile called name for reading. The name is looked
// up in the store's index and never used as a path: an unknown name returns
// an error wrapping ErrNotFound. A file that is no longer a regular one,
// such as a symbolic link put in its place, is refused, never followed.
// The caller must close the file.
func (s *Store) Open(name string) (*os.File, Meta, error) {
	f, m, _, err := s.open(name)
	return f, m, err
}

// open is Open, and returns the file's FileInfo too.
func (s *Store) open(name string) (*os.File, Meta, os.FileInfo, error) {
	m, ok := s.lookup(name)
	if !ok {
		return nil, Meta{}, nil, fmt.Errorf("profile: %.64q: %w", name, ErrNotFound)
	}
	f, fi, err := openRegular(filepath.Join(s.dir, m.Name))
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted by a write since the lookup.
		return nil, Meta{}, nil, fmt.Errorf("profile: %q: %w", m.Name, ErrNotFound)
	}
	if err != nil {
		return nil, Meta{}, nil, fmt.Errorf("profile: %w", err)
	}
	return f, m, fi, nil
}

// Keep marks the indexed profile called name as kept (see Meta.Kept) until
// Close: a write on demand never deletes it, though the store's other
// writes still delete the oldest profiles, kept or not. An unknown name
// returns an error wrapping ErrNotFound.
func (s *Store) Keep(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.entries {
		if s.entries[i].meta.Name == name {
			s.entries[i].meta.Kept = true
			return nil
		}
	}
	return fmt.Errorf("profile: %.64q: %w", name, ErrNotFound)
}

// lookup returns the metadata of the indexed profile called name.
func (s *Store) lookup(name string) (Meta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.entries {
		if e.meta.Name == name {
			return e.meta, true
		}
	}
	return Meta{}, false
}

// DiskBytes returns the bytes the stored profiles and their metadata take on
// disk.
func (s *Store) DiskBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Stats returns counters of what the store has done since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Written: s.written.Load(),
		Failed:  s.failed.Load(),
		TooSoon: s.tooSoon.Load(),
		Removed: s.removed.Load(),
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
