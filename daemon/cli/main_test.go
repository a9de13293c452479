package cli

import (
	"os"
	"testing"

	"github.com/mwan3d/mwan3d/internal/bed"
)

// TestMain removes the mwan3d binary the end-to-end test built.
func TestMain(m *testing.M) { os.Exit(bed.Main(m)) }
