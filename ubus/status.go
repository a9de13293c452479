package ubus

import (
	"context"
	"errors"
	"strconv"
)

// Status is a ubus status code, as carried by STATUS messages. It implements
// error, so a method handler may return a Status directly, and
// errors.Is(err, StatusNotFound) matches a [StatusError] with that code.
type Status int32

// Status codes (libubus enum ubus_msg_status).
const (
	StatusOK               Status = 0
	StatusInvalidCommand   Status = 1
	StatusInvalidArgument  Status = 2
	StatusMethodNotFound   Status = 3
	StatusNotFound         Status = 4
	StatusNoData           Status = 5
	StatusPermissionDenied Status = 6
	StatusTimeout          Status = 7
	StatusNotSupported     Status = 8
	StatusUnknownError     Status = 9
	StatusConnectionFailed Status = 10
	StatusNoMemory         Status = 11
	StatusParseError       Status = 12
	StatusSystemError      Status = 13
)

var statusText = [...]string{
	StatusOK:               "Success",
	StatusInvalidCommand:   "Invalid command",
	StatusInvalidArgument:  "Invalid argument",
	StatusMethodNotFound:   "Method not found",
	StatusNotFound:         "Not found",
	StatusNoData:           "No response",
	StatusPermissionDenied: "Permission denied",
	StatusTimeout:          "Request timed out",
	StatusNotSupported:     "Operation not supported",
	StatusUnknownError:     "Unknown error",
	StatusConnectionFailed: "Connection failed",
	StatusNoMemory:         "Out of memory",
	StatusParseError:       "Parsing message data failed",
	StatusSystemError:      "System error",
}

// String returns the text the ubus CLI prints for s (libubus
// ubus_strerror), "Unknown error: N" for codes it does not know.
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusText) {
		return statusText[s]
	}
	return "Unknown error: " + strconv.Itoa(int(s))
}

// Error implements error.
func (s Status) Error() string { return s.String() }

// StatusError is the error returned for a request answered with a non-zero
// status, or failed on the client side (timeout, lost connection).
type StatusError struct {
	Op     string // the operation, e.g. `call "network.interface" "status"`
	Status Status
	Err    error // underlying cause for client-side failures, or nil

	fromOwner bool // the STATUS came from the object's owner, not ubusd
}

// Error describes the failed operation and its status.
func (e *StatusError) Error() string {
	s := "ubus"
	if e.Op != "" {
		s += " " + e.Op
	}
	s += ": " + e.Status.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is the same Status.
func (e *StatusError) Is(target error) bool {
	st, ok := target.(Status)
	return ok && st == e.Status
}

// Unwrap returns the underlying cause, such as context.DeadlineExceeded.
func (e *StatusError) Unwrap() error { return e.Err }

// StatusOf returns the ubus status an error stands for: StatusOK for nil, the
// code of a [Status] or [StatusError] in the chain, StatusTimeout for
// context.DeadlineExceeded, and StatusUnknownError otherwise.
func StatusOf(err error) Status {
	if err == nil {
		return StatusOK
	}
	if se, ok := errors.AsType[*StatusError](err); ok {
		return se.Status
	}
	if st, ok := errors.AsType[Status](err); ok {
		return st
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return StatusTimeout
	}
	return StatusUnknownError
}
