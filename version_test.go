package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/hexprox/hexprox/internal/usage/report"
)

// These tests run the commands that print and exit: version, help and
// usage's help, through command and through a binary built the way a
// release is (-ldflags -X main.version=...).

const releaseVersion = "v9.8.7-test"

var buildRelease = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hexprox-release")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "handler")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+releaseVersion, "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &buildError{string(out)}
	}
	return bin, nil
})

// runRelease runs the release binary with args and an environment of
// env alone (no storage settings), and returns its stdout, stderr and
// exit code.
func runRelease(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := buildRelease()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir()}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return o.String(), e.String(), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestReleaseBinaryPrintsItsVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, errOut, code := runRelease(t, nil, args...)
		if out != "hexprox "+releaseVersion+"\n" || errOut != "" || code != 0 {
			t.Errorf("handler %s: exit %d, stdout %q, stderr %q", args[0], code, out, errOut)
		}
	}
	// Usage's help needs no storage settings, and survives broken ones.
	for _, args := range [][]string{{"usage", "-h"}, {"usage", "--help"}, {"usage", "help"}} {
		out, errOut, code := runRelease(t, []string{"PORT=not-a-port"}, args...)
		if out != report.Help || errOut != "" || code != 0 {
			t.Errorf("handler %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, errOut, out)
		}
	}
	out, _, code := runRelease(t, nil, "help")
	if code != 0 || out != help {
		t.Errorf("handler help: exit %d:\n%s", code, out)
	}
	_, errOut, code := runRelease(t, nil, "usage", "--bogus")
	if code != 1 || !strings.Contains(errOut, "flag provided but not defined: -bogus") || !strings.Contains(errOut, "--org ORG") || strings.Contains(errOut, "Usage of usage") {
		t.Errorf("handler usage --bogus: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestCommandHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		var out bytes.Buffer
		if err := command(context.Background(), args, noEnv, &out); err != nil || out.String() != help {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
	}
	for _, line := range []string{"\n  handler keys ", "\n  handler usage ", "\n  handler version ", "\n  handler help "} {
		if !strings.Contains(help, line) {
			t.Errorf("help lacks %q:\n%s", line, help)
		}
	}
	err := command(context.Background(), []string{"serve"}, noEnv, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `unknown command "serve"`) {
		t.Errorf("unknown command: %v", err)
	}
}

func noEnv(string) string { return "" }

func TestUsageReadsTheSettingsOnlyToReport(t *testing.T) {
	broken := func(k string) string { return map[string]string{"PORT": "not-a-port"}[k] }
	var out bytes.Buffer
	if err := command(context.Background(), []string{"usage", "-h"}, broken, &out); err != nil || out.String() != report.Help {
		t.Errorf("usage -h with broken settings: %v\n%s", err, out.String())
	}
	err := command(context.Background(), []string{"usage"}, broken, &out)
	if err == nil || !strings.Contains(err.Error(), "invalid settings") || !strings.Contains(err.Error(), "PORT") {
		t.Errorf("usage with broken settings: %v", err)
	}
	dir := t.TempDir()
	out.Reset()
	env := map[string]string{"USAGE_DIR": dir}
	if err := command(context.Background(), []string{"usage", "--format", "csv"}, func(k string) string { return env[k] }, &out); err != nil || !strings.HasPrefix(out.String(), "org,requests,") {
		t.Errorf("usage over an empty USAGE_DIR: %v\n%s", err, out.String())
	}
}

func TestFullVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	info := func(settings ...string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{}
			for i := 0; i+1 < len(settings); i += 2 {
				bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	rev := "0123456789abcdef0123456789abcdef01234567"
	version = "dev"
	for _, c := range []struct {
		info func() (*debug.BuildInfo, bool)
		want string
	}{
		{none, "dev"},
		{info(), "dev"},
		{info("vcs.revision", rev, "vcs.modified", "false"), "dev+0123456789ab"},
		{info("vcs.revision", rev, "vcs.modified", "true"), "dev+0123456789ab-modified"},
		{info("vcs.revision", "abc"), "dev+abc"},
	} {
		if got := fullVersion(c.info); got != c.want {
			t.Errorf("fullVersion = %q, want %q", got, c.want)
		}
	}
	version = "v1.2.3"
	if got := fullVersion(info("vcs.revision", rev, "vcs.modified", "true")); got != "v1.2.3" {
		t.Errorf("a set version gave %q", got)
	}
	var out bytes.Buffer
	if err := command(context.Background(), []string{"version"}, noEnv, &out); err != nil || out.String() != "hexprox v1.2.3\n" {
		t.Errorf("version: %v %q", err, out.String())
	}
}
