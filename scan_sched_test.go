package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// k8sJob reads what the Indexed Job manifest runs: the container's environment (name: value pairs) and the
// shell script of its args (the block scalar after "args:").
func k8sJob(t *testing.T, path string) (env map[string]string, script string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env = map[string]string{}
	var lines []string
	var name string
	inArgs, inBlock, indent := false, false, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if inBlock {
			ind := len(line) - len(strings.TrimLeft(line, " "))
			if trim != "" && ind < indent {
				inBlock, inArgs = false, false
			} else {
				if indent == 0 {
					indent = ind
				}
				lines = append(lines, strings.TrimPrefix(line, strings.Repeat(" ", indent)))
				continue
			}
		}
		switch {
		case strings.HasPrefix(trim, "- name: "):
			name = strings.TrimPrefix(trim, "- name: ")
		case strings.HasPrefix(trim, "value: ") && name != "":
			env[name] = strings.Trim(strings.TrimPrefix(trim, "value: "), `"`)
			name = ""
		case trim == "args:":
			inArgs = true
		case inArgs && trim == "- |":
			inBlock = true
		}
	}
	if len(lines) == 0 {
		t.Fatalf("%s: no args script found", path)
	}
	return env, strings.Join(lines, "\n")
}

// The shard scripts for Kubernetes and Slurm run as their schedulers would run them (the index variables set,
// one process per shard) in the lab; their outputs merge to exactly one run's result.
func TestShardSchedulerScripts(t *testing.T) {
	l := scanCLILab(t, []uint16{22, 80})
	bin := tcpwalkBinary(t)
	const n = 3
	common := []string{"TARGETS=198.18.0.2-3", "PORTS=1-60,80", "SEED=99", "RATE=20000",
		"TCPWALK_GLOBAL_OPTS=--netns " + l.Prober.Name}
	single := runTcpwalk(t, "", "--netns", l.Prober.Name, "scan", "-p", "1-60,80", "--seed", "99", "--json", "198.18.0.2-3")
	want := verdictLines(t, single)

	run := func(name string, cmd *exec.Cmd) {
		t.Helper()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	merge := func(dir string) []string {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, "shard-*.xml"))
		if len(files) != n {
			t.Fatalf("%s: %d shard outputs %v, want %d", dir, len(files), files, n)
		}
		return verdictLines(t, runTcpwalk(t, "", append([]string{"merge", "--json"}, files...)...))
	}

	t.Run("slurm", func(t *testing.T) {
		dir := t.TempDir()
		for k := 1; k <= n; k++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "scripts/slurm-scan.sh")
			cmd.Env = append(os.Environ(), append(common, "RESULTS="+dir, "TCPWALK="+bin,
				fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", k+9), "SLURM_ARRAY_TASK_MIN=10", fmt.Sprintf("SLURM_ARRAY_TASK_COUNT=%d", n))...)
			run(fmt.Sprintf("slurm task %d", k), cmd)
		}
		if got := merge(dir); !slices.Equal(want, got) {
			t.Errorf("merged Slurm shards differ from one run:\none run:\n%s\nmerged:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		env, script := k8sJob(t, "scripts/k8s-scan-job.yaml")
		if env["SHARDS"] == "" || env["SEED"] == "" || env["RESULTS"] != "/results" {
			t.Fatalf("manifest env %v: want SHARDS, SEED and RESULTS=/results", env)
		}
		dir := t.TempDir()
		// tcpwalk on PATH, as in the image; the manifest's env, with the lab's targets and a local results
		// directory in place of the volume.
		binDir := t.TempDir()
		if err := os.Symlink(bin, filepath.Join(binDir, "tcpwalk")); err != nil {
			t.Fatal(err)
		}
		var base []string
		for k, v := range env {
			base = append(base, k+"="+v)
		}
		for k := 0; k < n; k++ {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
			cmd.Env = append(append(os.Environ(), base...), append(common, "RESULTS="+dir, fmt.Sprintf("SHARDS=%d", n),
				"PATH="+binDir+":"+os.Getenv("PATH"), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", k))...)
			run(fmt.Sprintf("pod %d", k), cmd)
		}
		if got := merge(dir); !slices.Equal(want, got) {
			t.Errorf("merged Kubernetes shards differ from one run:\none run:\n%s\nmerged:\n%s", strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	})
}
