package probe

import "errors"

// UsageError marks an error in what the caller asked for: a bad target, a
// refused destination, an impossible option set. Commands exit with status 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// EnvError marks an error of the environment: missing privileges, a guard that
// cannot be installed, a namespace that does not exist. Commands exit with
// status 3.
type EnvError struct{ Err error }

func (e *EnvError) Error() string { return e.Err.Error() }
func (e *EnvError) Unwrap() error { return e.Err }

// ErrTimeout is returned by Flow.Next and Flow.Expect when the deadline passes
// before a matching event arrives.
var ErrTimeout = errors.New("probe: no reply before the deadline")

// ErrClosed is returned by a Flow or Prober used after Close.
var ErrClosed = errors.New("probe: closed")

func usagef(err error) error { return &UsageError{Err: err} }
func envf(err error) error   { return &EnvError{Err: err} }
