package report_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/tcpwalk/tcpwalk/craft"
	"github.com/tcpwalk/tcpwalk/probe"
	"github.com/tcpwalk/tcpwalk/probe/lab"
	"github.com/tcpwalk/tcpwalk/probe/lab/labtest"
	"github.com/tcpwalk/tcpwalk/probe/walk"
	"github.com/tcpwalk/tcpwalk/report"
	"github.com/tcpwalk/tcpwalk/result"
)

var (
	pcapUs   = netip.MustParseAddr("198.18.0.1")
	pcapThem = netip.MustParseAddr("198.18.0.2")
)

// tcpPacket builds a whole IPv4 packet with craft, as a raw socket sees it.
func tcpPacket(t *testing.T, out bool, flags craft.Flags, seq, ack uint32) []byte {
	t.Helper()
	s := craft.Segment{Src: pcapUs, Dst: pcapThem, SrcPort: 40000, DstPort: 7001, Seq: seq, Ack: ack, Flags: flags, Window: 65535}
	if !out {
		s.Src, s.Dst, s.SrcPort, s.DstPort = s.Dst, s.Src, s.DstPort, s.SrcPort
	}
	b := make([]byte, s.Len())
	if _, err := s.Encode(b); err != nil {
		t.Fatalf("encode %v: %v", flags, err)
	}
	return b
}

// icmpPacket builds an ICMP port unreachable from the target quoting a SYN.
func icmpPacket(t *testing.T) []byte {
	t.Helper()
	quoted := tcpPacket(t, true, craft.FlagSYN, 1, 0)
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4, SrcIP: pcapThem.AsSlice(), DstIP: pcapUs.AsSlice()}
	icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeDestinationUnreachable, layers.ICMPv4CodePort)}
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, icmp, gopacket.Payload(quoted[:28]))
	if err != nil {
		t.Fatalf("build ICMP: %v", err)
	}
	return buf.Bytes()
}

// pcapResults are two walks whose segments interleave in time, an ICMP
// error, and a segment without bytes (left out of the file).
func pcapResults(t *testing.T) []walk.Result {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms)*time.Millisecond + 123) }
	return []walk.Result{
		{Scenario: "handshake", Segments: []walk.Segment{
			{At: at(0), Dir: walk.Out, Flags: craft.FlagSYN, RemoteState: result.Listen, Raw: tcpPacket(t, true, craft.FlagSYN, 1000, 0)},
			{At: at(2), Dir: walk.In, Flags: craft.FlagSYN | craft.FlagACK, RemoteState: result.SynRcvd, Raw: tcpPacket(t, false, craft.FlagSYN|craft.FlagACK, 5000, 1001)},
			{At: at(4), Dir: walk.Out, Flags: craft.FlagACK, Note: "ACK of SYN", RemoteState: result.Established, Raw: tcpPacket(t, true, craft.FlagACK, 1001, 5001)},
		}},
		{Scenario: "closed-port", Segments: []walk.Segment{
			{At: at(1), Dir: walk.Out, Flags: craft.FlagSYN, Raw: tcpPacket(t, true, craft.FlagSYN, 1, 0)},
			{At: at(3), Dir: walk.In, Flags: craft.FlagRST | craft.FlagACK, RemoteState: result.Closed, Raw: tcpPacket(t, false, craft.FlagRST|craft.FlagACK, 0, 2)},
			{At: at(5), Dir: walk.In, ICMP: "port unreachable", RemoteState: result.Closed, Raw: icmpPacket(t)},
			{At: at(6), Dir: walk.In, Flags: craft.FlagRST, Note: "not captured"},
		}},
	}
}

// pcapWant is the file's packets in time order: comment and direction.
var pcapWant = []struct {
	comment string
	out     bool
}{
	{"handshake: out S → remote LISTEN", true},
	{"closed-port: out S", true},
	{"handshake: in S. → remote SYN_RCVD", false},
	{"closed-port: in R. → remote CLOSED", false},
	{"handshake: out . (ACK of SYN) → remote ESTABLISHED", true},
	{"closed-port: in ICMP port unreachable → remote CLOSED", false},
}

// TestWritePcap reads the file back with pcapgo's reader: every packet
// with its bytes, timestamp, comment and direction, in time order.
func TestWritePcap(t *testing.T) {
	results := pcapResults(t)
	var b bytes.Buffer
	if err := report.WritePcap(&b, results); err != nil {
		t.Fatalf("WritePcap: %v", err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("read pcapng back: %v", err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw IP (101)", r.LinkType())
	}
	if app := r.SectionInfo().Application; app != "tcpwalk" {
		t.Errorf("section application %q, want tcpwalk", app)
	}
	// The source of each expected packet, in the same order as pcapWant.
	src := []walk.Segment{results[0].Segments[0], results[1].Segments[0], results[0].Segments[1],
		results[1].Segments[1], results[0].Segments[2], results[1].Segments[2]}
	for i, want := range pcapWant {
		data, ci, opts, err := r.ReadPacketDataWithOptions()
		if err != nil {
			t.Fatalf("packet %d: %v", i+1, err)
		}
		if !bytes.Equal(data, src[i].Raw) || !ci.Timestamp.Equal(src[i].At) {
			t.Errorf("packet %d: %d bytes at %v, want the %d bytes recorded at %v", i+1, len(data), ci.Timestamp, len(src[i].Raw), src[i].At)
		}
		if diff := cmp.Diff([]string{want.comment}, opts.Comments); diff != "" {
			t.Errorf("packet %d comment (-want +got):\n%s", i+1, diff)
		}
		dir := pcapgo.NgEpbFlagDirectionInbound
		if want.out {
			dir = pcapgo.NgEpbFlagDirectionOutbound
		}
		if opts.Flags == nil || opts.Flags.Direction != dir {
			t.Errorf("packet %d direction flags %+v, want %v", i+1, opts.Flags, dir)
		}
		// An independent decoder sees IPv4 in the raw link type.
		p := gopacket.NewPacket(data, layers.LinkTypeRaw, gopacket.Default)
		if p.Layer(layers.LayerTypeIPv4) == nil || p.ErrorLayer() != nil {
			t.Errorf("packet %d does not decode as IPv4: %v", i+1, p)
		}
	}
	if _, _, err := r.ReadPacketData(); !errors.Is(err, io.EOF) {
		t.Errorf("after %d packets: %v, want EOF (the segment without bytes left out)", len(pcapWant), err)
	}
}

// TestWritePcapTools reads the file with tcpdump and tshark, as a user
// would: the packet count, each packet's comment, the direction.
func TestWritePcapTools(t *testing.T) {
	path := filepath.Join(t.TempDir(), "synthetic.pcapng")
	writePcapFile(t, path, pcapResults(t))

	lines := tcpdumpLines(t, path)
	if len(lines) != len(pcapWant) {
		t.Fatalf("tcpdump shows %d packets, want %d:\n%s", len(lines), len(pcapWant), strings.Join(lines, "\n"))
	}
	for i, w := range []string{"198.18.0.1.40000 > 198.18.0.2.7001: Flags [S]", "Flags [S.]", "Flags [R.]", "Flags [.]",
		"ICMP 198.18.0.2 tcp port 7001 unreachable"} {
		j := map[int]int{0: 0, 1: 2, 2: 3, 3: 4, 4: 5}[i]
		if !strings.Contains(lines[j], w) {
			t.Errorf("tcpdump line %d: %q, want %q in it", j+1, lines[j], w)
		}
	}

	rows := tsharkFields(t, path, "frame.comment", "frame.packet_flags_direction")
	var got, want []string
	for _, r := range rows {
		got = append(got, strings.Join(r, " | "))
	}
	for _, w := range pcapWant {
		dir := "0x00000001"
		if w.out {
			dir = "0x00000002"
		}
		want = append(want, w.comment+" | "+dir)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tshark comment | direction (-want +got):\n%s", diff)
	}
}

func TestWritePcapLongComment(t *testing.T) {
	results := pcapResults(t)
	results[0].Segments[0].Note = strings.Repeat("é", 70000) // longer than a pcapng option can hold
	var b bytes.Buffer
	if err := report.WritePcap(&b, results); err != nil {
		t.Fatalf("WritePcap: %v", err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	n := 0
	for {
		_, _, opts, err := r.ReadPacketDataWithOptions()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", n+1, err)
		}
		n++
		if n == 1 {
			c := opts.Comments[0]
			if utf8.RuneCountInString(c) > 200 || !strings.HasPrefix(c, "handshake: out S (éé") || !strings.HasSuffix(c, "…") {
				t.Errorf("long comment not cut to 200 runes with an ellipsis: %d runes, %.40q...", utf8.RuneCountInString(c), c)
			}
		}
	}
	if n != len(pcapWant) {
		t.Errorf("%d packets after a long comment, want %d", n, len(pcapWant))
	}
}

func TestWritePcapEmptyAndErrors(t *testing.T) {
	var b bytes.Buffer
	if err := report.WritePcap(&b, nil); err != nil {
		t.Fatalf("WritePcap(nil): %v", err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("an empty capture does not read back: %v", err)
	}
	if _, _, err := r.ReadPacketData(); !errors.Is(err, io.EOF) {
		t.Errorf("empty capture: %v, want EOF", err)
	}
	if err := report.WritePcap(failWriter{}, pcapResults(t)); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WritePcap to a failing writer: %v, want the writer's error", err)
	}
}

// writePcapFile writes results to path with WritePcap.
func writePcapFile(t *testing.T, path string, results []walk.Result) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := report.WritePcap(f, results); err != nil {
		f.Close()
		t.Fatalf("WritePcap: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// needTool returns the path of a capture tool, skipping the test when it
// is missing, unless CI=true (.ci/run installs tcpdump and tshark).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install %s): %v", name, name, err)
		}
		t.Skipf("%s is not installed (apt-get install %s): %v", name, name, err)
	}
	return p
}

// tcpdumpLines is `tcpdump -r path -n`: one line per packet.
func tcpdumpLines(t *testing.T, path string) []string {
	t.Helper()
	cmd := exec.Command(needTool(t, "tcpdump"), "-r", path, "-n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tcpdump -r %s: %v\n%s", path, err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "link-type RAW") {
		t.Errorf("tcpdump: %q, want link-type RAW", stderr.String())
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// tsharkFields is `tshark -r path -T fields -e F...`: per packet, the fields.
func tsharkFields(t *testing.T, path string, fields ...string) [][]string {
	t.Helper()
	args := []string{"-r", path, "-T", "fields"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(needTool(t, "tshark"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	for _, ln := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		rows = append(rows, strings.Split(ln, "\t"))
	}
	return rows
}

// TestWritePcapRealWalks writes the segments of real walks against Linux in
// a fresh lab (namespaces removed at cleanup) and reads the file back with
// tcpdump and tshark: one packet per recorded segment, in time order, each
// with a comment naming its walk and direction.
func TestWritePcapRealWalks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs walks in a network-namespace lab")
	}
	needTool(t, "tcpdump")
	needTool(t, "tshark")
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	var scenarios []walk.Scenario
	for _, name := range []string{"handshake", "passive-close", "syn-rcvd", "closed-port"} {
		s, ok := walk.Lookup(name)
		if !ok {
			t.Fatalf("no scenario %q", name)
		}
		scenarios = append(scenarios, s)
	}
	cfg := walk.Config{Prober: p, Port: lab.PortHold, ClosedPort: lab.PortClosed,
		Trigger: &walk.LabTarget{Addr: l.TargetAddr, NS: l.Prober}, Oracle: walk.SockDiag{NS: l.Target}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := walk.Run(ctx, cfg, scenarios)

	total := 0
	for _, r := range results {
		t.Logf("%s: %s, %d segments %s", r.Scenario, r.Verdict, len(r.Segments), r.Reason)
		if len(r.Segments) == 0 {
			t.Errorf("%s: no segment recorded", r.Scenario)
		}
		for i, s := range r.Segments {
			if len(s.Raw) == 0 {
				t.Errorf("%s: segment %d (%s %s) has no bytes", r.Scenario, i+1, s.Dir, s.Flags)
			}
		}
		total += len(r.Segments)
	}
	path := filepath.Join(t.TempDir(), "walks.pcapng")
	writePcapFile(t, path, results)

	lines := tcpdumpLines(t, path)
	t.Logf("tcpdump -r %s -n:\n%s", path, strings.Join(lines, "\n"))
	if len(lines) != total {
		t.Errorf("tcpdump shows %d packets, want the %d recorded segments", len(lines), total)
	}

	rows := tsharkFields(t, path, "frame.comment", "frame.packet_flags_direction", "frame.time_epoch")
	if len(rows) != total {
		t.Fatalf("tshark shows %d packets, want the %d recorded segments", len(rows), total)
	}
	var shown []string
	for _, r := range rows {
		shown = append(shown, strings.Join(r, "  "))
	}
	t.Logf("tshark -e frame.comment -e frame.packet_flags_direction -e frame.time_epoch:\n%s", strings.Join(shown, "\n"))
	perWalk := map[string]int{}
	prev := ""
	for i, r := range rows {
		if len(r) != 3 {
			t.Fatalf("tshark row %d: %q, want 3 fields", i+1, r)
		}
		comment, dir, epoch := r[0], r[1], r[2]
		name, rest, ok := strings.Cut(comment, ": ")
		wantDir := map[string]string{"out": "0x00000002", "in": "0x00000001"}[strings.Fields(rest + " x")[0]]
		if !ok || wantDir == "" || dir != wantDir {
			t.Errorf("packet %d: comment %q, direction %s: want \"WALK: in|out ...\" and the matching direction flag", i+1, comment, dir)
		}
		perWalk[name]++
		// Equal widths: tshark prints nine decimals, so strings compare as numbers.
		if epoch < prev {
			t.Errorf("packet %d at %s, before the packet ahead of it (%s)", i+1, epoch, prev)
		}
		prev = epoch
	}
	for _, r := range results {
		if perWalk[r.Scenario] != len(r.Segments) {
			t.Errorf("%s: %d packets with its comment, want its %d segments", r.Scenario, perWalk[r.Scenario], len(r.Segments))
		}
	}
	if !strings.Contains(strings.Join(flatten(rows), "\n"), "handshake: in S. → remote SYN_RCVD") {
		t.Errorf("no packet comment shows the handshake's SYN-ACK putting the remote in SYN_RCVD")
	}
}

func flatten(rows [][]string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// TestWritePcapFillsOffloadChecksum: a reply from a veth peer carries only
// the pseudo-header sum in its TCP checksum (checksum offload); in the file
// the checksum verifies and the comment says it was filled in. A packet
// with a truly wrong checksum is written as it came.
func TestWritePcapFillsOffloadChecksum(t *testing.T) {
	partial := tcpPacket(t, false, craft.FlagSYN|craft.FlagACK, 5000, 1001)
	p, err := craft.ParsePacket(partial)
	if err != nil {
		t.Fatal(err)
	}
	pseudo := craft.PseudoHeaderSum(p.IP.Source(), p.IP.Destination(), craft.ProtocolTCP, uint16(len(p.TCP)))
	p.TCP.SetChecksum(craft.Checksum(nil, pseudo))
	bad := tcpPacket(t, false, craft.FlagRST, 5001, 0)
	bp, _ := craft.ParsePacket(bad)
	bp.TCP.SetChecksum(bp.TCP.Checksum() ^ 0x0101)
	res := []walk.Result{{Scenario: "handshake", Segments: []walk.Segment{
		{At: t0.Add(time.Millisecond), Dir: walk.In, Flags: craft.FlagSYN | craft.FlagACK, Raw: partial},
		{At: t0.Add(2 * time.Millisecond), Dir: walk.In, Flags: craft.FlagRST, Raw: bad},
	}}}
	var b bytes.Buffer
	if err := report.WritePcap(&b, res); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	data, _, opts, err := r.ReadPacketDataWithOptions()
	if err != nil {
		t.Fatal(err)
	}
	got, err := craft.ParsePacket(data)
	if err != nil {
		t.Fatal(err)
	}
	if sum := craft.Checksum(got.TCP, pseudo); sum != 0xffff {
		t.Errorf("offloaded reply in the file: TCP checksum %#04x does not verify", got.TCP.Checksum())
	}
	if len(opts.Comments) != 1 || !strings.Contains(opts.Comments[0], "TCP checksum filled in") {
		t.Errorf("comment %q does not say the checksum was filled in", opts.Comments)
	}
	if !bytes.Equal(partial[:36], data[:36]) || !bytes.Equal(partial[38:], data[38:]) {
		t.Error("bytes other than the TCP checksum changed")
	}
	data, _, opts, err = r.ReadPacketDataWithOptions()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, bad) || strings.Contains(opts.Comments[0], "filled in") {
		t.Errorf("a truly bad checksum was changed or marked filled in: %q", opts.Comments)
	}
}

// TestWritePcapIPv6Walks: walks over IPv6 in the lab write a pcapng whose
// packets an independent decoder (gopacket) reads in the same raw link
// type (101, which carries IPv4 and IPv6 alike) as IPv6 + TCP between the
// lab's IPv6 addresses, with every recorded byte.
func TestWritePcapIPv6Walks(t *testing.T) {
	if testing.Short() {
		t.Skip("runs walks in a network-namespace lab")
	}
	l := labtest.New(t)
	p, err := probe.Open(probe.Config{Remote: l.TargetAddr6, NetNS: l.Prober, Warn: func(m string) { t.Logf("warning: %s", m) }})
	if err != nil {
		t.Fatalf("probe.Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	var scenarios []walk.Scenario
	for _, name := range []string{"handshake", "closed-port"} {
		s, ok := walk.Lookup(name)
		if !ok {
			t.Fatalf("no scenario %q", name)
		}
		scenarios = append(scenarios, s)
	}
	cfg := walk.Config{Prober: p, Port: lab.PortHold, ClosedPort: lab.PortClosed,
		Trigger: &walk.LabTarget{Addr: l.TargetAddr6, NS: l.Prober}, Oracle: walk.SockDiag{NS: l.Target}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	results := walk.Run(ctx, cfg, scenarios)
	var b bytes.Buffer
	if err := report.WritePcap(&b, results); err != nil {
		t.Fatalf("WritePcap: %v", err)
	}
	r, err := pcapgo.NewNgReader(bytes.NewReader(b.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("read pcapng back: %v", err)
	}
	if r.LinkType() != layers.LinkTypeRaw {
		t.Errorf("link type %v, want raw IP (101)", r.LinkType())
	}
	n := 0
	for {
		data, _, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("packet %d: %v", n+1, err)
		}
		n++
		pkt := gopacket.NewPacket(data, layers.LinkTypeRaw, gopacket.Default)
		ip, _ := pkt.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
		tcp, _ := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil || pkt.ErrorLayer() != nil {
			t.Errorf("packet %d does not decode as IPv6 + TCP: %v", n, pkt)
			continue
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP)
		dst, _ := netip.AddrFromSlice(ip.DstIP)
		ends := map[netip.Addr]bool{l.ProberAddr6: true, l.TargetAddr6: true}
		if !ends[src] || !ends[dst] || src == dst {
			t.Errorf("packet %d: %v -> %v, want between %v and %v", n, src, dst, l.ProberAddr6, l.TargetAddr6)
		}
		if port := uint16(tcp.DstPort); src == l.ProberAddr6 && port != lab.PortHold && port != lab.PortClosed {
			t.Errorf("packet %d to port %d, want %d or %d", n, port, lab.PortHold, lab.PortClosed)
		}
		// The target's segments left its kernel with only the pseudo-header
		// sum (veth offload); the file has them whole (RFC 8200 §8.1).
		if cp, err := craft.ParseIPv6Packet(data); err != nil ||
			craft.Checksum(cp.TCP, craft.PseudoHeaderSum(src, dst, craft.ProtocolTCP, uint16(len(cp.TCP)))) != 0xffff {
			t.Errorf("packet %d from %v: TCP checksum does not verify (%v)", n, src, err)
		}
	}
	if n < 4 {
		t.Errorf("%d packets in the pcapng of a handshake and a closed-port walk over IPv6, want at least 4", n)
	}
}
