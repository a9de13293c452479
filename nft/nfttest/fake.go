// Package nfttest provides an in-memory stand-in for nft.Applier, for
// tests of code that applies plans (the daemon) without root.
package nfttest

import (
	"errors"
	"sync"

	"github.com/mwan3d/mwan3d/nft"
)

// Fake records applied plans. Like the kernel it is atomic: a failed
// Apply leaves the current plan in place. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	current  *nft.Plan
	first    *nft.Plan
	applies  int
	failNext error
	counters map[string][2]uint64
}

// Apply makes p the current plan, or returns the error set with
// FailNextApply (once) and keeps the previous one.
func (f *Fake) Apply(p *nft.Plan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p == nil {
		return errors.New("nfttest: apply of a nil plan")
	}
	if err := f.failNext; err != nil {
		f.failNext = nil
		return err
	}
	f.current = p
	if f.first == nil {
		f.first = p
	}
	f.applies++
	return nil
}

// Remove drops the current plan (the table).
func (f *Fake) Remove() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.current = nil
	return nil
}

// Counters returns the plan's counters with the values set by SetCounter
// (zero otherwise). Without a current plan (no table) it fails like the
// real Applier.
func (f *Fake) Counters(p *nft.Plan) ([]nft.CounterValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.current == nil {
		return nil, errors.New("nfttest: no table")
	}
	out := make([]nft.CounterValue, len(p.Counters))
	for i, info := range p.Counters {
		v := f.counters[info.Name]
		out[i] = nft.CounterValue{CounterInfo: info, Packets: v[0], Bytes: v[1]}
	}
	return out, nil
}

// FailNextApply makes the next Apply return err without changing anything.
func (f *Fake) FailNextApply(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = err
}

// SetCounter sets the values Counters reports for a named counter.
func (f *Fake) SetCounter(name string, packets, bytes uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counters == nil {
		f.counters = map[string][2]uint64{}
	}
	f.counters[name] = [2]uint64{packets, bytes}
}

// Current returns the plan in force, or nil before the first Apply and
// after Remove.
func (f *Fake) Current() *nft.Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.current
}

// First returns the first plan applied successfully, or nil.
func (f *Fake) First() *nft.Plan {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first
}

// Applies returns how many Apply calls succeeded.
func (f *Fake) Applies() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.applies
}
