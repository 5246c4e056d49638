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

// The scan, merge and ndiff examples of the README and of scan's and merge's help run as written, in that
// order, in a directory of their own, with "tcpwalk" a wrapper that points it at the lab (--netns).
func TestScanNmapExamples(t *testing.T) {
	l := scanCLILab(t, []uint16{22, 80})
	bin := tcpwalkBinary(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	help := scanCommand().Description + mergeCommand().Description
	examples := []struct {
		line    string
		inHelp  bool // also (or only) in --help
		creates []string
	}{
		{"tcpwalk scan -p ssh,http,8000-8100 198.18.0.2", true, nil},
		{"tcpwalk scan --top-ports 100 --exclude 198.18.0.3 198.18.0.2-5", true, nil},
		{"tcpwalk scan -p 1-1024 -oA lab-scan 198.18.0.2", true, []string{"lab-scan.xml", "lab-scan.nmap", "lab-scan.gnmap"}},
		{"tcpwalk scan -p 1-1024 -oX - 198.18.0.2", true, nil},
		{"tcpwalk scan -p 1-1024 -oX before.xml 198.18.0.2", false, []string{"before.xml"}},
		{"tcpwalk scan -p 1-1024 -oX after.xml 198.18.0.2", false, []string{"after.xml"}},
		{"ndiff before.xml after.xml", false, nil},
		{"tcpwalk scan -p 1-1024 --shard 1/2 --seed 7 --json 198.18.0.2 > shard-1.json", true, []string{"shard-1.json"}},
		{"tcpwalk scan -p 1-1024 --shard 2/2 --seed 7 -oX shard-2.xml 198.18.0.2", true, []string{"shard-2.xml"}},
		{"tcpwalk merge shard-1.json shard-2.xml", true, nil},
		{"tcpwalk merge --json -oX merged.xml shard-1.json shard-2.xml", true, []string{"merged.xml"}},
	}
	needTool(t, "ndiff", "ndiff")
	dir, binDir := t.TempDir(), t.TempDir()
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %q --netns %q \"$@\"\n", bin, l.Prober.Name)
	if err := os.WriteFile(filepath.Join(binDir, "tcpwalk"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ex := range examples {
		inReadme := strings.Contains(string(readme), "    "+ex.line+"\n")
		if ex.inHelp && !strings.Contains(help, "   "+ex.line+"\n") || !ex.inHelp && !inReadme {
			t.Errorf("example %q is not in the README or --help any more: update this test", ex.line)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", ex.line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		cancel()
		t.Logf("$ %s\n%s", ex.line, out)
		if err != nil {
			t.Errorf("%s: %v", ex.line, err)
		}
		for _, f := range ex.creates {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
				t.Errorf("%s: no %s: %v", ex.line, f, err)
			}
		}
	}
}
