package tcpconn

import "github.com/tcpwalk/tcpwalk/craft"

// Seq is a TCP sequence number with modular comparisons (see craft.Seq).
type Seq = craft.Seq

// Size is a length in sequence space (see craft.Size).
type Size = craft.Size
