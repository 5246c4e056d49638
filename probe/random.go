package probe

import (
	"crypto/rand"
	"encoding/binary"
	"time"
)

// RandomUint32 returns a uniformly random 32-bit number from crypto/rand:
// initial sequence numbers must not be guessable (RFC 9293 §3.4.1, RFC 6528).
func RandomUint32() uint32 {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux (getrandom); keep going with
		// the clock rather than panic.
		return uint32(time.Now().UnixNano())
	}
	return binary.BigEndian.Uint32(b[:])
}
