package vmtest

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// CPIOWriter writes an uncompressed "newc" cpio archive, the format the
// kernel unpacks as an initramfs.
type CPIOWriter struct {
	w   io.Writer
	off int64
	ino int
	err error
}

// NewCPIOWriter writes the archive to w.
func NewCPIOWriter(w io.Writer) *CPIOWriter { return &CPIOWriter{w: w} }

// Dir adds a directory.
func (c *CPIOWriter) Dir(name string, perm os.FileMode) error {
	return c.entry(name, 0o040000|uint32(perm.Perm()), 0, nil)
}

// File adds a regular file whose size bytes come from r.
func (c *CPIOWriter) File(name string, perm os.FileMode, size int64, r io.Reader) error {
	return c.entry(name, 0o100000|uint32(perm.Perm()), size, r)
}

// Close writes the trailer; it does not close the underlying writer.
func (c *CPIOWriter) Close() error {
	return c.entry("TRAILER!!!", 0, 0, nil)
}

func (c *CPIOWriter) entry(name string, mode uint32, size int64, r io.Reader) error {
	if c.err != nil {
		return c.err
	}
	name = strings.TrimPrefix(name, "/")
	if name == "" || size < 0 || size > 0xffffffff {
		return fmt.Errorf("cpio: bad entry %q of %d bytes", name, size)
	}
	c.ino++
	nlink := 1
	if mode&0o040000 != 0 {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		c.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	c.write([]byte(hdr + name + "\x00"))
	c.pad()
	if r != nil {
		n, err := io.CopyN(c.w, r, size)
		c.off += n
		if err != nil && c.err == nil {
			c.err = fmt.Errorf("cpio: %s: %w", name, err)
		}
	}
	c.pad()
	return c.err
}

// pad aligns the next header or file body to 4 bytes.
func (c *CPIOWriter) pad() {
	if n := c.off % 4; n != 0 {
		c.write(make([]byte, 4-n))
	}
}

func (c *CPIOWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.off += int64(n)
	if err != nil {
		c.err = fmt.Errorf("cpio: %w", err)
	}
}
