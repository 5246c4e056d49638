package tcpconn_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/tcpconn"
)

// A handshake, one request and the tidy RST, on a remote in a lab
// namespace. The engine picks the ISS, offers Linux's options, and from
// the SYN,ACK on sends TSopt and scaled windows as negotiated.
func Example() {
	p, err := probe.Open(probe.Config{Remote: netip.MustParseAddr("198.18.0.2")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	f, err := p.NewFlow(7004, 0) // the lab's echo server
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	c := tcpconn.New(f, nil)
	defer c.Tidy() // an exact RST: nothing stays behind on the remote

	ctx := context.Background()
	if err := c.SendSYN("SYN"); err != nil {
		fmt.Println(err)
		return
	}
	deadline := time.Now().Add(time.Second)
	for {
		r, err := c.Next(ctx, deadline)
		if err != nil {
			fmt.Println("no SYN,ACK:", err)
			return
		}
		if r.Flags == craft.FlagSYN|craft.FlagACK && r.Seg.Ack == c.ISS+1 {
			break // RCV.NXT and the negotiated options are set
		}
	}
	_ = c.SendNext(craft.FlagACK, nil, "")
	_ = c.SendNext(craft.FlagPSH|craft.FlagACK, []byte("hello"), "request")
	fmt.Println("timestamps:", c.Neg.Timestamps, "window shift:", c.Neg.RcvShift)
}

// Sequence numbers compare modulo 2^32: a window may span the wrap.
func ExampleSeq_InWindow() {
	rcvNxt := tcpconn.Seq(0xFFFFFFF0)
	for _, seq := range []tcpconn.Seq{0xFFFFFFEF, 0xFFFFFFF0, 0x0F, 0x10} {
		fmt.Printf("%#x in [RCV.NXT, RCV.NXT+0x20): %v\n", uint32(seq), seq.InWindow(rcvNxt, 0x20))
	}
	fmt.Println(tcpconn.Seq(0xFFFFFFFF).LessThan(0), tcpconn.Seq(0xFFFFFFFF).Size(0x0F))
	// Output:
	// 0xffffffef in [RCV.NXT, RCV.NXT+0x20): false
	// 0xfffffff0 in [RCV.NXT, RCV.NXT+0x20): true
	// 0xf in [RCV.NXT, RCV.NXT+0x20): true
	// 0x10 in [RCV.NXT, RCV.NXT+0x20): false
	// true 16
}
