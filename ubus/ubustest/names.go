package ubustest

import (
	"os/user"
	"strconv"
	"sync"
)

var names sync.Map // "u<uid>" / "g<gid>" → name

// lookupName resolves a uid (or gid) to its name, as ubusd puts it in the
// USER and GROUP attributes; the number when it has no name.
func lookupName(id int, isUser bool) string {
	key := "g" + strconv.Itoa(id)
	if isUser {
		key = "u" + strconv.Itoa(id)
	}
	if n, ok := names.Load(key); ok {
		return n.(string)
	}
	name := strconv.Itoa(id)
	if isUser {
		if u, err := user.LookupId(name); err == nil {
			name = u.Username
		}
	} else if g, err := user.LookupGroupId(name); err == nil {
		name = g.Name
	}
	names.Store(key, name)
	return name
}
