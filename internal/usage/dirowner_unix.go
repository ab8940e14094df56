//go:build unix

package usage

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkOwner refuses a usage directory that another user could have
// planted rows in: one owned by someone else, or writable by others. (A
// directory in a shared temporary folder, the fallback without HOME, may
// have been made by another local user first.)
func checkOwner(dir string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Getuid(); int(st.Uid) != uid {
		return fmt.Errorf("usage directory %s belongs to user %d, not this process's (%d): set USAGE_DIR to a directory of your own", dir, st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("usage directory %s is writable by other users (%v): make it 0700, or set USAGE_DIR to a directory of your own", dir, fi.Mode().Perm())
	}
	return nil
}
