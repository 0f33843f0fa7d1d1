package cli

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "flint ") {
		t.Fatalf("version: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := Main(nil, &out, &errOut); code != 0 {
		t.Fatalf("help: code %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out.String(), c.name) {
			t.Errorf("help does not list %s", c.name)
		}
	}
}

// The version stamped with -ldflags -X (hack/images.sh does) is what every
// spelling of the version command prints.
func TestVersionSpellings(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	Version = "v0.0.0-12-gabcdef0-dirty"
	for _, arg := range []string{"version", "--version", "-version"} {
		var out, errOut bytes.Buffer
		if code := Main([]string{arg}, &out, &errOut); code != 0 || out.String() != "flint v0.0.0-12-gabcdef0-dirty\n" {
			t.Errorf("flint %s: code %d, out %q, stderr %q", arg, code, out.String(), errOut.String())
		}
	}
}

func TestUnknownCommandAndBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "nope"`) {
		t.Fatalf("code %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := Main([]string{"up"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "-f is required") {
		t.Fatalf("up without -f: code %d, stderr %q", code, errOut.String())
	}
	errOut.Reset()
	if code := Main([]string{"proxy", "-concurrency", "-1"}, &out, &errOut); code != 1 {
		t.Fatalf("proxy -concurrency -1: code %d, stderr %q", code, errOut.String())
	}
}

// TestEveryFlagIsDocumented keeps docs/configuration.md complete: each
// command's flags, as its -h prints them, must appear there.
func TestEveryFlagIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, c := range commands() {
		var out, errOut bytes.Buffer
		Main([]string{c.name, "-h"}, &out, &errOut)
		for _, m := range flagLine.FindAllStringSubmatch(errOut.String(), -1) {
			if !bytes.Contains(doc, []byte("`-"+m[1]+"`")) {
				t.Errorf("flint %s -%s is not documented in docs/configuration.md", c.name, m[1])
			}
		}
	}
}
