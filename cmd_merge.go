//go:build linux

package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/tcpwalk/tcpwalk/probe/scan"
	"github.com/tcpwalk/tcpwalk/report"
)

func mergeCommand() *cli.Command {
	return &cli.Command{
		Name:      "merge",
		Usage:     "join the outputs of the shards of a scan (--shard I/N) into one result",
		ArgsUsage: "FILE...",
		Description: `Reads the outputs of scan --shard 1/N ... N/N (JSON lines from --json, or
nmap XML from -oX, in any mix) and prints the result one run of the whole
scan would have printed: every target's verdict, the counters summed.

It refuses outputs of different scans (type, hosts, ports, seed, retries or
shard count differ), a shard given twice, an interrupted shard, and
verdicts for targets that are not the shard's; it names the shards missing.
Text and grepable outputs sum ports up without saying which: they cannot be
merged.

Examples:
   tcpwalk scan -p 1-1024 --shard 1/2 --seed 7 --json 198.18.0.2 > shard-1.json
   tcpwalk scan -p 1-1024 --shard 2/2 --seed 7 -oX shard-2.xml 198.18.0.2
   tcpwalk merge shard-1.json shard-2.xml
   tcpwalk merge --json -oX merged.xml shard-1.json shard-2.xml

scripts/k8s-scan-job.yaml and scripts/slurm-scan.sh run the shards on a
Kubernetes Indexed Job or a Slurm job array.

Exit status: 0 done, 2 bad usage or outputs that do not merge, 3 a file
cannot be read or written.`,
		Flags:  scanOutputFlags(),
		Action: runMerge,
	}
}

func runMerge(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErr("merge: give the output files of the shards, e.g. tcpwalk merge shard-1.json shard-2.json")
	}
	if c.Bool("json") && c.Bool("grepable") {
		return usageErr("--json and --grepable: pick one output format")
	}
	var parts []scan.Part
	for _, name := range c.Args().Slice() {
		f, err := os.Open(name)
		if err != nil {
			return &exitError{code: exitEnv, err: fmt.Errorf("merge: %w", err)}
		}
		p, err := report.ReadScan(f, name)
		f.Close()
		if err != nil {
			return usageErr("merge: %v", err)
		}
		parts = append(parts, p)
	}
	res, err := scan.Merge(parts)
	if err != nil {
		return usageErr("%v", err)
	}
	outs, err := openScanOutputs(c)
	if err != nil {
		return err
	}
	defer outs.close()
	if err := outs.print(c, res); err != nil {
		return &exitError{code: exitEnv, err: fmt.Errorf("merge: write results: %w", err)}
	}
	return nil
}
