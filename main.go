// Command tcpwalk crafts TCP segments, sends them on raw IPv4 sockets and
// checks that a remote, unmodified TCP stack answers as RFC 9293 says.
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args, os.Stdout, os.Stderr))
}
