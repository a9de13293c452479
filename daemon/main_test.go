package daemon

import (
	"os"
	"testing"

	ibed "github.com/mwan3d/mwan3d/internal/bed"
)

// TestMain removes the mwan3d binary the testbed tests built (internal/bed).
func TestMain(m *testing.M) { os.Exit(ibed.Main(m)) }
