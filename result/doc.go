// Package result is tcpwalk's result model: the values a walk, a
// conformance check, a firewall probe or a script produce, as types rather
// than text. A verdict and a TCP state are enums, flags are [craft.Flags],
// an error stays an error. Text is made at the edge: by package report, and
// by the MarshalText/MarshalJSON methods here, which write exactly the
// strings tcpwalk's JSON has always carried ("pass", "SYN_RCVD", ...).
//
// The package is portable: it builds on every OS (it imports only craft
// and the standard library), so report and a program that reads tcpwalk's
// JSON build on macOS too; only probing needs Linux.
package result
