package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/mwan3d/mwan3d/ubus"
)

// objectName is the daemon's ubus object.
const objectName = "mwan3"

// errNotRunning means the service is not running: ubusd does not answer,
// or the daemon's object is not registered.
var errNotRunning = errors.New("the mwan3 service is not running")

// CallError is a method call the daemon refused, with its message.
type CallError struct {
	Method  string
	Status  ubus.Status
	Message string // the reply's "error", or ""
}

// Error says which method failed and why.
func (e *CallError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: %s", e.Method, e.Message)
	}
	return fmt.Sprintf("%s: %v", e.Method, e.Status)
}

// caller calls methods of the daemon's object.
type caller interface {
	call(ctx context.Context, method string, args any) (ubus.Table, error)
	close()
}

// ubusCaller is a caller over a ubus connection.
type ubusCaller struct {
	conn *ubus.Conn
	id   uint32
}

// dialDaemon connects to ubusd at socket ("" tries the standard paths) and
// looks the daemon's object up; errNotRunning when either fails.
func dialDaemon(ctx context.Context, socket string) (caller, error) {
	conn, err := ubus.Dial(ctx, socket, ubus.WithoutReconnect())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotRunning, err)
	}
	id, err := conn.LookupID(ctx, objectName)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %w", errNotRunning, err)
	}
	return &ubusCaller{conn: conn, id: id}, nil
}

func (c *ubusCaller) call(ctx context.Context, method string, args any) (ubus.Table, error) {
	tables, err := c.conn.Invoke(ctx, c.id, method, args)
	rep := ubus.Table{}
	for _, t := range tables {
		rep = append(rep, t...)
	}
	if err != nil {
		msg, _ := rep.GetString("error")
		return rep, &CallError{Method: method, Status: ubus.StatusOf(err), Message: msg}
	}
	return rep, nil
}

func (c *ubusCaller) close() { c.conn.Close() }
