//go:build !linux

package track

import (
	"errors"
	"time"
)

var processStart = time.Now()

// systemUptime approximates the uptime by the process age off Linux.
func systemUptime() time.Duration { return time.Since(processStart) }

// defaultProbers has no native probers off Linux.
func defaultProbers() ProberFactory { return unsupportedProbers{} }

type unsupportedProbers struct{}

func (unsupportedProbers) NewProber(Params, Binding) (Prober, error) {
	return nil, errors.ErrUnsupported
}
