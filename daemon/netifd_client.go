package daemon

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mwan3d/mwan3d/ubus"
)

// netifdKind says what a netifd input is.
type netifdKind int

const (
	// netifdDump carries netifd's whole view (`network.interface dump`):
	// at start, when netifd is back after a restart, after a reconnection
	// to ubusd.
	netifdDump netifdKind = iota
	// netifdIfUp and netifdIfDown follow the `network.interface` ubus
	// events (netifd's ifup and ifdown).
	netifdIfUp
	netifdIfDown
	// netifdUpdate follows an interface.update or interface.down
	// notification: something changed, the status says what.
	netifdUpdate
	// netifdUpFailed follows an interface.update notification whose
	// status says the interface is not up: netifd's ifup-failed (its only
	// event other than ifdown sent with the interface down).
	netifdUpFailed
)

func (k netifdKind) String() string {
	switch k {
	case netifdDump:
		return "dump"
	case netifdIfUp:
		return "ifup"
	case netifdIfDown:
		return "ifdown"
	case netifdUpFailed:
		return "ifup-failed"
	}
	return "update"
}

// netifdInput is one input from netifd to the loop. The status is always
// re-read from netifd after the event, never taken from the event itself.
type netifdInput struct {
	kind   netifdKind
	name   string          // the netifd interface (not for dumps)
	status NetifdInterface // its status, when known
	known  bool            // netifd has the interface
	dump   []NetifdInterface
	absent bool // dump: netifd is not on the bus
	at     time.Time
}

// netifdObject is netifd's main object; every interface also has
// netifdObject + "." + name.
const netifdObject = "network.interface"

// netifdClient follows netifd over ubus: the `network.interface` events
// (ifup, ifdown) and the notifications of the `network.interface` object
// (interface.update, interface.down), through a subscription that follows
// netifd as it comes and goes (ubus.Conn.Watch); every time it is made
// (netifd appeared, restarted, or ubusd was reconnected) netifd's dump is
// read again. Every event queues a job; one goroutine runs the jobs in
// order, re-reads the status from netifd and hands the result to the
// loop.
type netifdClient struct {
	conn *ubus.Conn
	log  *slog.Logger
	out  chan<- netifdInput

	jobs chan netifdJob
}

type netifdJob struct {
	kind netifdKind
	name string
}

// maxNetifdJobs bounds the queue of netifd events waiting to be read back;
// beyond it a dump replaces them.
const maxNetifdJobs = 256

func newNetifdClient(conn *ubus.Conn, log *slog.Logger, out chan<- netifdInput) *netifdClient {
	return &netifdClient{conn: conn, log: log, out: out, jobs: make(chan netifdJob, maxNetifdJobs)}
}

// queue adds a job without blocking; when the queue is full a dump is
// queued instead, which supersedes everything.
func (c *netifdClient) queue(j netifdJob) {
	select {
	case c.jobs <- j:
	default:
		c.log.Warn("netifd events arrive faster than they are read; re-reading everything")
		for {
			select {
			case <-c.jobs:
				continue
			default:
			}
			break
		}
		select {
		case c.jobs <- netifdJob{kind: netifdDump}:
		default:
		}
	}
}

// run follows netifd until ctx ends. The first input it delivers is
// always a dump (possibly absent).
func (c *netifdClient) run(ctx context.Context) {
	if l, err := c.conn.Listen(ctx, netifdObject, c.onEvent); err != nil {
		c.log.Error("cannot listen to netifd events", "err", err)
	} else {
		defer l.Close()
	}
	sub, err := c.conn.Watch(ctx, netifdObject, c.onNotify, func(string) { c.queue(netifdJob{kind: netifdDump}) })
	if err != nil {
		c.log.Error("cannot subscribe to netifd", "err", err)
	} else {
		defer sub.Close()
	}
	c.do(ctx, netifdJob{kind: netifdDump}, true)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-c.jobs:
			c.do(ctx, j, false)
		}
	}
}

func (c *netifdClient) onEvent(_ string, data ubus.Table) {
	action, _ := data.GetString("action")
	name, _ := data.GetString("interface")
	if name == "" {
		return
	}
	switch action {
	case "ifup":
		c.queue(netifdJob{kind: netifdIfUp, name: name})
	case "ifdown":
		c.queue(netifdJob{kind: netifdIfDown, name: name})
	default:
		c.queue(netifdJob{kind: netifdUpdate, name: name})
	}
}

func (c *netifdClient) onNotify(typ string, data ubus.Table) error {
	name, _ := data.GetString("interface")
	if name == "" {
		return nil
	}
	kind := netifdUpdate
	if up, ok := data.GetBool("up"); ok && !up && typ == "interface.update" {
		kind = netifdUpFailed
	}
	c.queue(netifdJob{kind: kind, name: name})
	return nil
}

// netifdTimeout bounds one status or dump call to netifd.
const netifdTimeout = 5 * time.Second

// do runs one job: reads netifd's answer and hands it to the loop. A dump
// that fails is reported as absent only when first is set (so that the
// loop does not wait for netifd at start); later failures are logged.
func (c *netifdClient) do(ctx context.Context, j netifdJob, first bool) {
	cctx, cancel := context.WithTimeout(ctx, netifdTimeout)
	defer cancel()
	in := netifdInput{kind: j.kind, name: j.name}
	if j.kind == netifdDump {
		t, err := c.conn.Call(cctx, netifdObject, "dump", nil)
		if err == nil {
			in.dump, err = ParseNetifdDump(t)
		}
		if err != nil {
			if !first {
				c.log.Warn("cannot read netifd's interfaces", "err", err)
				return
			}
			c.log.Info("netifd is not available yet; interfaces are down until it reports them", "err", err)
			in.absent = true
		}
	} else {
		t, err := c.conn.Call(cctx, netifdObject+"."+j.name, "status", nil)
		switch {
		case err == nil:
			if in.status, err = ParseNetifdStatus(t); err != nil {
				c.log.Warn("bad status from netifd", "interface", j.name, "err", err)
				return
			}
			in.known = true
		case errors.Is(err, ubus.StatusNotFound):
			// netifd does not know the interface (any more).
		default:
			c.log.Warn("cannot read interface status from netifd", "interface", j.name, "err", err)
			return
		}
	}
	in.at = time.Now()
	select {
	case c.out <- in:
	case <-ctx.Done():
	}
}
