package daemon

import (
	"os"
	"sync"
	"testing"
)

// TestProcessDebug: an extra open file and an extra goroutine show in the
// counts.
func TestProcessDebug(t *testing.T) {
	if _, err := os.Stat(fdDir); err != nil {
		t.Skipf("no %s here: %v", fdDir, err)
	}
	before := processDebug()
	if before.Goroutines < 1 || before.FDs < 1 || before.HeapAlloc <= 0 || before.HeapObjects <= 0 {
		t.Fatalf("implausible figures %+v", before)
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A hundred parked goroutines stand out of whatever the runtime and
	// earlier tests start or end meanwhile.
	const extra = 100
	stop := make(chan struct{})
	var started sync.WaitGroup
	for range extra {
		started.Add(1)
		go func() {
			started.Done()
			<-stop
		}()
	}
	defer close(stop)
	started.Wait()
	after := processDebug()
	if after.FDs != before.FDs+1 {
		t.Errorf("fds %d after opening one, %d before", after.FDs, before.FDs)
	}
	if d := after.Goroutines - before.Goroutines; d < extra-10 || d > extra+10 {
		t.Errorf("goroutines %d after starting %d, %d before", after.Goroutines, extra, before.Goroutines)
	}
}

// TestDebugMethod calls `debug {}` on a running daemon.
func TestDebugMethod(t *testing.T) {
	h := newHarness(t, testConfig)
	h.start()
	rep := h.mustCall("debug", nil)
	for _, k := range []string{"goroutines", "fds", "heap_alloc", "heap_objects"} {
		v, ok := rep.GetInt(k)
		if !ok || v == 0 {
			t.Errorf("%s = %d (present %v) in %s", k, v, ok, rep)
		}
	}
	if g, _ := rep.GetInt("goroutines"); g < 3 {
		t.Errorf("goroutines %d: the loop, the ubus reader and this call's handler at least", g)
	}
}
