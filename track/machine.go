package track

import (
	"log/slog"
	"strconv"
	"time"
)

// Action is a tracker event (hotplug ACTION, spec §5.7).
type Action string

// Tracker events.
const (
	ActionConnected     Action = "connected"
	ActionDisconnected  Action = "disconnected"
	ActionConnecting    Action = "connecting"
	ActionDisconnecting Action = "disconnecting"
)

// Tracker file names (spec §5.8).
const (
	filePID         = "PID"
	fileStarted     = "STARTED"
	fileStatus      = "STATUS"
	fileOnline      = "ONLINE"
	fileOffline     = "OFFLINE"
	fileScore       = "SCORE"
	fileLost        = "LOST"
	fileTurn        = "TURN"
	fileTime        = "TIME"
	fileTrackOutput = "TRACK_OUTPUT"
	prefixTrack     = "TRACK_"
	prefixLatency   = "LATENCY_"
	prefixLoss      = "LOSS_"
)

// sink receives what the machine does besides changing its own state:
// tracker files and events. The tracker implements it with real files and
// the Manager's event channel; tests record it.
type sink interface {
	file(name, value string)
	event(a Action, firstConnect bool)
}

// machine is legacy mwan3track's score state machine (spec §5.2, §5.4 to
// §5.6), free of I/O and clocks: `now` is the uptime in whole seconds that
// the tracker files record. All methods are called from one goroutine.
//
// Following the spec's RECs, a successful round while disconnecting sets
// the in-memory status back to online as well as the file (legacy kept
// `disconnecting` in memory, so the next degradation fired no
// `disconnecting` event).
type machine struct {
	iface  string
	device string
	p      *Params
	log    *slog.Logger
	out    sink

	score, lost, turn int
	status            Status // in-memory status
	fileStatus        Status // content of the STATUS file
	started           bool
	onlineAt          int64 // ONLINE file (0 when not online)
	offlineAt         int64 // OFFLINE file (0 when online)
	roundAt           int64 // TIME file: end of the last round
}

// newMachine returns the state at tracker start: score down+up, STARTED=0.
func newMachine(iface string, p *Params, log *slog.Logger, out sink) *machine {
	m := &machine{iface: iface, p: p, log: log, out: out, score: p.Down + p.Up}
	m.setStarted(false)
	return m
}

func (m *machine) setStarted(v bool) {
	m.started = v
	if v {
		m.out.file(fileStarted, "1")
	} else {
		m.out.file(fileStarted, "0")
	}
}

func (m *machine) setFileStatus(s Status) {
	m.fileStatus = s
	m.out.file(fileStatus, string(s))
}

func (m *machine) setTimes(online, offline int64) {
	m.onlineAt, m.offlineAt = online, offline
	m.out.file(fileOnline, strconv.FormatInt(online, 10))
	m.out.file(fileOffline, strconv.FormatInt(offline, 10))
}

// firstConnect runs legacy's first connect (§5.2) with the interface's
// current device: disabled when the interface is not up or has no device,
// else STARTED=1 and either a quiet offline (initial_state offline, or no
// carrier) or connected with FIRSTCONNECT=1.
func (m *machine) firstConnect(now int64, device string, up, carrier bool) {
	m.device = device
	if m.status != StatusOnline {
		m.status = m.p.InitialState
	}
	if !up || device == "" {
		m.disabled()
		return
	}
	m.setStarted(true)
	if m.status == StatusOffline || !carrier {
		m.status = StatusOffline
		m.setFileStatus(StatusOffline)
		m.setTimes(0, now)
		m.score = 0
		return
	}
	m.connected(now, true)
}

// round applies one evaluated round (outs in configuration order) and
// returns the pause before the next one (§5.4, §5.5).
func (m *machine) round(now int64, outs []outcome) time.Duration {
	p := m.p
	hostUp := 0
	for i := range outs {
		o := &outs[i]
		m.out.file(prefixTrack+o.target, string(o.state))
		if !o.probed || o.state == TargetSkipped {
			continue
		}
		if o.quality {
			m.out.file(prefixLatency+o.target, strconv.Itoa(o.latency))
			m.out.file(prefixLoss+o.target, strconv.Itoa(o.loss))
		}
		verdict := ""
		if o.state == TargetUp {
			hostUp++
			if m.score <= p.Up {
				verdict = "success"
			}
		} else {
			m.lost++
			if m.score > p.Up {
				verdict = "failed"
			}
		}
		if verdict != "" {
			m.log.Info("Check (" + m.checkLabel(o) + ") " + verdict + " for target \"" + o.target +
				"\" on interface " + m.iface + " (" + m.device + "). Current score: " + strconv.Itoa(m.score))
		}
	}

	pause := p.Interval
	if hostUp < p.Reliability {
		m.score--
		if m.score < p.Up {
			m.score = 0
			if p.KeepFailureInterval {
				pause = p.FailureInterval
			}
		} else {
			m.transition(StatusDisconnecting, ActionDisconnecting)
			pause = p.FailureInterval
		}
		if m.score == p.Up {
			m.disconnected(now)
		}
	} else {
		if m.score < p.Down+p.Up && m.lost > 0 {
			m.log.Info("Lost " + strconv.Itoa(m.lost*p.Count) + " ping(s) on interface " + m.iface +
				" (" + m.device + "). Current score: " + strconv.Itoa(m.score))
		}
		m.score++
		m.lost = 0
		if m.score > p.Up {
			m.status = StatusOnline // REC of §5.5; legacy left it at disconnecting
			m.setFileStatus(StatusOnline)
			m.score = p.Down + p.Up
		} else {
			m.transition(StatusConnecting, ActionConnecting)
			pause = p.RecoveryInterval
			if m.score == p.Up {
				m.connected(now, false)
			}
		}
	}
	m.turn++
	m.out.file(fileLost, strconv.Itoa(m.lost))
	m.out.file(fileScore, strconv.Itoa(m.score))
	m.out.file(fileTurn, strconv.Itoa(m.turn))
	m.roundAt = now
	m.out.file(fileTime, strconv.FormatInt(now, 10))
	return pause
}

func (m *machine) checkLabel(o *outcome) string {
	if !o.quality {
		return m.p.Method
	}
	return m.p.Method + ": latency=" + strconv.Itoa(o.latency) + "ms loss=" + strconv.Itoa(o.loss) + "%"
}

// transition is legacy's connecting/disconnecting: only when the in-memory
// status differs.
func (m *machine) transition(s Status, a Action) {
	if m.status == s {
		return
	}
	m.status = s
	m.setFileStatus(s)
	m.log.Info("Interface " + m.iface + " (" + m.device + ") is " + string(s))
	m.out.event(a, false)
}

func (m *machine) connected(now int64, first bool) {
	m.status = StatusOnline
	m.setFileStatus(StatusOnline)
	m.setTimes(now, 0)
	m.score = m.p.Down + m.p.Up
	m.lost, m.turn = 0, 0
	m.log.Info("Interface " + m.iface + " (" + m.device + ") is online")
	m.out.event(ActionConnected, first)
}

// disconnected goes offline; the event fires only if the STATUS file said
// online or disconnecting.
func (m *machine) disconnected(now int64) {
	prev := m.fileStatus
	m.status = StatusOffline
	m.setFileStatus(StatusOffline)
	m.setTimes(0, now)
	m.score = 0
	if prev == StatusOnline || prev == StatusDisconnecting {
		m.log.Info("Interface " + m.iface + " (" + m.device + ") is offline")
		m.out.event(ActionDisconnected, false)
		return
	}
	m.log.Info("Skip disconnected event for " + m.iface + " (" + m.device + ")")
}

func (m *machine) disabled() {
	m.status = StatusDisabled
	m.setFileStatus(StatusDisabled)
	m.setStarted(false)
}

// ifDown handles netifd's ifdown after the running round, if any, was
// evaluated: disconnected, then disabled (§5.6).
func (m *machine) ifDown(now int64) {
	m.disconnected(now)
	m.disabled()
}

// ifUpSignal records an ifup before first connect runs (STARTED=1, §5.6).
func (m *machine) ifUpSignal() { m.setStarted(true) }

// carrierLost takes the interface offline at once (not in legacy, which
// waited for `down` failed rounds). Probing stops until the carrier is back,
// so SCORE is written now rather than after the next round.
func (m *machine) carrierLost(now int64) {
	m.disconnected(now)
	m.out.file(fileScore, strconv.Itoa(m.score))
}

// reconfigure moves to new parameters keeping the status: the score is
// rescaled so that the same status holds under the new down/up (online:
// down+up; offline: 0; connecting: below up; disconnecting: above up).
func (m *machine) reconfigure(p *Params) {
	m.p = p
	full := p.Down + p.Up
	switch m.status {
	case StatusOnline:
		m.score = full
	case StatusConnecting:
		m.score = max(min(m.score, p.Up-1), 0)
	case StatusDisconnecting:
		m.score = min(max(m.score, p.Up+1), full)
	case StatusOffline:
		m.score = 0
	default:
		m.score = min(m.score, full)
	}
}

// tracking is the tracking status of a running tracker (§5.9).
func (m *machine) tracking() Tracking {
	if m.started {
		return TrackingActive
	}
	return TrackingPaused
}
