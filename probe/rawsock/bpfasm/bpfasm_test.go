package bpfasm

import (
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// TestLabels runs a program with forward jumps over a first byte: 1 or 2 → accept, 3 → goto accept, else drop.
func TestLabels(t *testing.T) {
	var p Program
	p.Add(bpf.LoadAbsolute{Off: 0, Size: 1})
	p.JumpIf(bpf.JumpEqual, 1, "accept", Next)
	p.JumpIf(bpf.JumpEqual, 2, "accept", Next)
	p.JumpIf(bpf.JumpEqual, 3, Next, "drop")
	p.Goto("accept")
	p.Label("drop")
	p.Add(bpf.RetConstant{Val: 0})
	p.Label("accept")
	p.Add(bpf.RetConstant{Val: 100})
	ins, err := p.Instructions()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Assemble(); err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	for b, want := range []int{0, 1, 1, 1, 0} {
		got, err := vm.Run([]byte{byte(b)})
		if err != nil {
			t.Fatal(err)
		}
		if (got > 0) != (want > 0) {
			t.Errorf("first byte %d: accept = %v, want %v", b, got > 0, want > 0)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(p *Program)
		want  string
	}{
		{"undefined label", func(p *Program) { p.Goto("nowhere"); p.Add(bpf.RetA{}) }, "undefined label"},
		{"backwards", func(p *Program) { p.Label("top"); p.Add(bpf.TAX{}); p.Goto("top") }, "backwards"},
		{"too far", func(p *Program) {
			p.JumpIf(bpf.JumpEqual, 0, "far", Next)
			for range 300 {
				p.Add(bpf.TAX{})
			}
			p.Label("far")
			p.Add(bpf.RetA{})
		}, "more than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Program
			tt.build(&p)
			if _, err := p.Instructions(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Instructions() error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
