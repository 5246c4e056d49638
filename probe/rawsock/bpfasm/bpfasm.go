// Package bpfasm assembles classic BPF programs with named jump targets.
//
// Classic BPF jumps count instructions to skip (at most 255), which makes hand-written filters brittle: adding one
// check shifts every offset after it. A Program lets a filter say "on mismatch go to drop" and resolves the skips
// once at the end. golang.org/x/net/bpf does the encoding.
package bpfasm

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// Next is the jump target meaning "fall through to the next instruction".
const Next = ""

// Program is a classic BPF program under construction. The zero value is ready to use.
type Program struct {
	ins    []bpf.Instruction
	jumps  []jump
	labels map[string]int
}

// jump is an instruction whose skips are resolved from labels by Instructions.
type jump struct {
	at            int
	ifTrue, ifNot string
	always        bool
}

// Add appends instructions that do not jump.
func (p *Program) Add(ins ...bpf.Instruction) {
	p.ins = append(p.ins, ins...)
}

// JumpIf compares A with val and jumps to the label ifTrue or ifNot (Next falls through).
func (p *Program) JumpIf(cond bpf.JumpTest, val uint32, ifTrue, ifNot string) {
	p.jumps = append(p.jumps, jump{at: len(p.ins), ifTrue: ifTrue, ifNot: ifNot})
	p.ins = append(p.ins, bpf.JumpIf{Cond: cond, Val: val})
}

// Goto jumps to label unconditionally.
func (p *Program) Goto(label string) {
	p.jumps = append(p.jumps, jump{at: len(p.ins), ifTrue: label, always: true})
	p.ins = append(p.ins, bpf.Jump{})
}

// Label names the position of the next instruction added.
func (p *Program) Label(name string) {
	if p.labels == nil {
		p.labels = make(map[string]int)
	}
	p.labels[name] = len(p.ins)
}

// Instructions returns the program with every jump resolved. It fails on an unknown label, a backward jump
// (classic BPF only jumps forward) or a distance over 255 instructions for a conditional jump.
func (p *Program) Instructions() ([]bpf.Instruction, error) {
	out := make([]bpf.Instruction, len(p.ins))
	copy(out, p.ins)
	for _, j := range p.jumps {
		t, err := p.skip(j.at, j.ifTrue)
		if err != nil {
			return nil, err
		}
		if j.always {
			out[j.at] = bpf.Jump{Skip: t}
			continue
		}
		f, err := p.skip(j.at, j.ifNot)
		if err != nil {
			return nil, err
		}
		if t > 255 || f > 255 {
			return nil, fmt.Errorf("bpfasm: conditional jump at %d skips %d/%d instructions, more than 255", j.at, t, f)
		}
		ji := p.ins[j.at].(bpf.JumpIf)
		ji.SkipTrue, ji.SkipFalse = uint8(t), uint8(f)
		out[j.at] = ji
	}
	return out, nil
}

func (p *Program) skip(at int, label string) (uint32, error) {
	if label == Next {
		return 0, nil
	}
	to, ok := p.labels[label]
	if !ok {
		return 0, fmt.Errorf("bpfasm: jump at %d to undefined label %q", at, label)
	}
	if to <= at {
		return 0, fmt.Errorf("bpfasm: jump at %d to label %q at %d goes backwards", at, label, to)
	}
	return uint32(to - at - 1), nil
}

// Assemble resolves the jumps and encodes the program for SO_ATTACH_FILTER.
func (p *Program) Assemble() ([]bpf.RawInstruction, error) {
	ins, err := p.Instructions()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(ins)
	if err != nil {
		return nil, fmt.Errorf("bpfasm: %w", err)
	}
	return raw, nil
}
