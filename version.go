package main

import (
	"runtime/debug"
	"strings"
)

// versionText is what --version prints after "tcpwalk version": the module
// version and the VCS commit the Go toolchain stamped into the binary
// (go build and go install record both when built from a git checkout).
// `go run` and test binaries carry no commit; they say so rather than
// print nothing.
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (built without module information)"
	}
	return describeBuild(bi)
}

// describeBuild writes bi as "v1.2.3, commit 0123456789ab (2026-12-03T14:00:00Z,
// modified), go1.26.8".
func describeBuild(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	parts := []string{v}
	if rev == "" {
		parts = append(parts, "commit unknown (not built from a git checkout with go build)")
	} else {
		c := "commit " + rev[:min(12, len(rev))]
		var notes []string
		if at != "" {
			notes = append(notes, at)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			c += " (" + strings.Join(notes, ", ") + ")"
		}
		parts = append(parts, c)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return strings.Join(parts, ", ")
}
