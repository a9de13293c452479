//go:build linux

package track

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// diskFiles puts values into the files of one directory with system calls
// relative to a descriptor of the directory: no path walk and none of
// os.File's set-up per file.
//
// A file written after every round (TURN, TIME) keeps two inodes open: the
// one at its name (the current value) and a spare one (the previous
// value) of the same name in a hidden sibling directory
// (<base>/.<iface>.spare), so that the interface's directory holds nothing
// but the tracker files. A new value overwrites the spare (pwrite,
// ftruncate when shorter) and renameat2(RENAME_EXCHANGE) swaps the two
// inodes: atomic for readers like a rename, but no inode is created or
// freed, which is most of the cost of a write on tmpfs (20 µs → 4 µs). A
// reader that opened the file keeps reading the value it opened until the
// write after next, a round (≥ 1 s) later; only a reader holding the file
// open across a whole round could see a newer value. The tracker owns
// both directories: when a name disappeared (a directory was removed) the
// exchange fails and the file is created again.
type diskFiles struct {
	dir, spareDir string
	dfd, sfd      int // the directories; -1 until opened
	pairs         map[string]*filePair
	noExchange    bool // the file system cannot exchange names
	buf           []byte
}

// filePair is a file rewritten after every round: cur is open on the
// inode at its name, spare on the inode in the spare directory (-1 until
// the second value), with the length of their contents.
type filePair struct {
	cur, spare       int
	curLen, spareLen int
}

func newDiskFiles(dir string) *diskFiles {
	return &diskFiles{
		dir:      dir,
		spareDir: filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".spare"),
		dfd:      -1,
		sfd:      -1,
		pairs:    map[string]*filePair{},
	}
}

func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// put replaces the content of name with value and a newline; everyRound
// keeps the file's inode for the next value.
func (d *diskFiles) put(name, value string, everyRound bool) error {
	if d.dfd < 0 {
		fd, err := openDir(d.dir)
		if err != nil {
			return err
		}
		d.dfd = fd
	}
	d.buf = append(append(d.buf[:0], value...), '\n')
	if p := d.pairs[name]; p != nil {
		err := d.exchange(p, name)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EXDEV) {
			d.noExchange = true
		}
		p.close()
		delete(d.pairs, name)
	}
	tmp := tmpName(name)
	fd, err := unix.Openat(d.dfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	err = pwriteAll(fd, d.buf, tmp)
	if err == nil {
		if err = unix.Renameat(d.dfd, tmp, d.dfd, name); err != nil {
			err = &os.LinkError{Op: "rename", Old: tmp, New: name, Err: err}
		}
	}
	if err != nil || !everyRound || d.noExchange {
		unix.Close(fd)
		if err != nil {
			_ = unix.Unlinkat(d.dfd, tmp, 0)
		}
		return err
	}
	d.pairs[name] = &filePair{cur: fd, curLen: len(d.buf), spare: -1}
	return nil
}

// exchange writes d.buf into the pair's spare inode and swaps it with the
// file.
func (d *diskFiles) exchange(p *filePair, name string) error {
	if p.spare < 0 {
		if d.sfd < 0 {
			if err := os.MkdirAll(d.spareDir, 0o755); err != nil {
				return err
			}
			fd, err := openDir(d.spareDir)
			if err != nil {
				return err
			}
			d.sfd = fd
		}
		fd, err := unix.Openat(d.sfd, name, unix.O_RDWR|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return &os.PathError{Op: "open", Path: filepath.Join(d.spareDir, name), Err: err}
		}
		p.spare, p.spareLen = fd, 0
	}
	if err := pwriteAll(p.spare, d.buf, name); err != nil {
		return err
	}
	if p.spareLen > len(d.buf) {
		if err := unix.Ftruncate(p.spare, int64(len(d.buf))); err != nil {
			return &os.PathError{Op: "truncate", Path: name, Err: err}
		}
	}
	p.spareLen = len(d.buf)
	if err := unix.Renameat2(d.sfd, name, d.dfd, name, unix.RENAME_EXCHANGE); err != nil {
		return &os.LinkError{Op: "exchange", Old: filepath.Join(d.spareDir, name), New: name, Err: err}
	}
	p.cur, p.spare = p.spare, p.cur
	p.curLen, p.spareLen = p.spareLen, p.curLen
	return nil
}

// pwriteAll writes b at the start of the file fd (named name).
func pwriteAll(fd int, b []byte, name string) error {
	n, err := unix.Pwrite(fd, b, 0)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

func (p *filePair) close() {
	for _, fd := range []int{p.cur, p.spare} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// reset closes every descriptor; the next put opens the directory again.
func (d *diskFiles) reset() {
	for name, p := range d.pairs {
		p.close()
		delete(d.pairs, name)
	}
	for _, fd := range []*int{&d.dfd, &d.sfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// close closes every descriptor and removes the spare directory.
func (d *diskFiles) close() error {
	d.reset()
	return os.RemoveAll(d.spareDir)
}
