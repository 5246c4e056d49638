package lab

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// UpConfig is a lab that outlives the process that makes it, as `tcpwalk
// lab up` makes one: its namespaces, its path's impairment and a server
// process of its own.
type UpConfig struct {
	Prefix string
	Stack  Stack
	// Routed puts a router running Firewall between prober and target
	// (Linux stack only).
	Routed   bool
	Firewall Firewall
	// Loss and Dup are the whole percentages of TCP segments dropped and
	// duplicated each way (Impair).
	Loss, Dup int
	// ServeArgs run this executable as the lab's server process, e.g.
	// {"lab", "serve", "--prefix", PREFIX}; that process calls
	// SignalReady once its servers listen.
	ServeArgs []string
	// Within bounds each wait for the server process (5 s if zero).
	Within time.Duration
}

// ErrUpInterrupted is returned by Up when ctx ended before the lab was
// ready; the half-made lab has been removed again.
var ErrUpInterrupted = errors.New("interrupted")

// Up makes the lab of cfg and waits until its servers listen. On any
// failure, and when ctx ends first, it removes everything it made, so that
// no half-made lab and no lab the user asked to stop is left. The caller
// Releases the returned Lab; the lab itself stays up until Destroy.
func Up(ctx context.Context, cfg UpConfig) (_ *Lab, err error) {
	if cfg.Routed && cfg.Stack != StackLinux {
		return nil, fmt.Errorf("a firewall needs --stack %s, not %s", StackLinux, cfg.Stack)
	}
	within := cfg.Within
	if within <= 0 {
		within = 5 * time.Second
	}
	var l *Lab
	if cfg.Routed {
		var r *Routed
		if r, err = CreateRouted(&RoutedConfig{Prefix: cfg.Prefix, Firewall: cfg.Firewall}); err == nil {
			l = r.Lab
			for _, rt := range r.Routers {
				rt.NS.Close()
			}
		}
	} else {
		l, err = Create(&Config{Prefix: cfg.Prefix, Stack: cfg.Stack})
	}
	if err != nil {
		return nil, fmt.Errorf("%w (needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN; leftovers: %s)", err, DownCommand(cfg.Prefix))
	}
	defer func() {
		if err != nil {
			StopServerProcess(cfg.Prefix)
			l.Close()
		}
	}()
	if err := l.Impair(cfg.Loss, cfg.Dup); err != nil {
		return nil, err
	}
	ready, err := StartServerProcess(cfg.Prefix, cfg.ServeArgs...)
	if err != nil {
		return nil, fmt.Errorf("start servers: %w", err)
	}
	if err := WaitReady(ready, within); err != nil {
		return nil, fmt.Errorf("servers did not start: %w (see %s)", err, LogFile(cfg.Prefix))
	}
	if l.Stack.HasOracle() {
		if err := WaitListening(l.Target, PortHold, within); err != nil {
			return nil, fmt.Errorf("servers did not start: %w (see %s)", err, LogFile(cfg.Prefix))
		}
	}
	if ctx.Err() != nil {
		// SIGINT or SIGTERM while the lab was being made.
		return nil, fmt.Errorf("%w: lab %s removed again", ErrUpInterrupted, cfg.Prefix)
	}
	return l, nil
}

// DownCommand is the command that removes the lab prefix.
func DownCommand(prefix string) string { return "tcpwalk lab down" + PrefixArg(prefix) }

// PrefixArg is " --prefix PREFIX" for a lab other than the default, else
// "": what a lab command needs to name the lab prefix.
func PrefixArg(prefix string) string {
	if prefix == DefaultPrefix {
		return ""
	}
	return " --prefix " + prefix
}
