package cli

import (
	"bytes"
	"encoding/json"
	"github.com/flint-dev/flint/api/v1alpha1"
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
	if code := Main([]string{"up"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "give the agents to run") {
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

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"--version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "flint ") {
		t.Fatalf("--version: code %d, out %q, err %q", code, out.String(), errOut.String())
	}
}

// TestBannerTriesAnAgentThatAnswers: the Try: line names an HTTP agent when
// there is one (a2a sorts first and has no /hello), else the A2A card, else
// an MCP agent's tools.
func TestBannerTriesAnAgentThatAnswers(t *testing.T) {
	agent := func(name string, p v1alpha1.Protocol) *v1alpha1.Agent {
		a := &v1alpha1.Agent{}
		a.Name, a.Namespace, a.Spec.Protocol = name, "default", p
		return a
	}
	a2a, echo, mcp := agent("a2a", v1alpha1.ProtocolA2A), agent("echo", v1alpha1.ProtocolHTTP), agent("mcp-go", v1alpha1.ProtocolMCP)
	for _, tc := range []struct {
		agents []*v1alpha1.Agent
		want   string
	}{
		{[]*v1alpha1.Agent{a2a, echo, mcp}, "curl http://gw/v1/agents/default/echo/hello"},
		{[]*v1alpha1.Agent{mcp, a2a}, "curl http://gw/v1/agents/default/a2a/.well-known/agent-card.json"},
		{[]*v1alpha1.Agent{mcp}, "flint mcp tools mcp-go"},
	} {
		var out bytes.Buffer
		printBanner(&out, "http://gw", tc.agents)
		if !strings.Contains(out.String(), "Try:\n  "+tc.want+"\n") {
			t.Errorf("banner:\n%s\nwant Try: %s", out.String(), tc.want)
		}
	}
}

// TestMessagesSayWhatToDo: the small mistakes of a first hour get answers
// that say what to write instead.
func TestMessagesSayWhatToDo(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"agents", "-gateway", "127.0.0.1:8080"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "give a URL such as http://127.0.0.1:8080") {
		t.Errorf("-gateway without a scheme: code %d, %q", code, errOut.String())
	}
	if _, err := listenGateway(":bad"); err == nil || strings.Contains(err.Error(), "another flint") || !strings.Contains(err.Error(), "give HOST:PORT") {
		t.Errorf("-addr :bad: %v", err)
	}
	ln, err := listenGateway("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := listenGateway(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "is another flint running?") {
		t.Errorf("address in use: %v", err)
	}
	errOut.Reset()
	if code := Main([]string{"up", "-f", "a", "-f", "b", "c"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "a: no such file") ||
		!strings.Contains(errOut.String(), "b: no such file") || !strings.Contains(errOut.String(), "c: no such file") {
		t.Errorf("repeated -f and a PATH argument are all loaded: code %d, %q", code, errOut.String())
	}
}

func TestToolArguments(t *testing.T) {
	got, err := toolArguments(`{"a": 1, "b": "x"}`, []string{"b=2", "c=hello", "d=[1,2]", "e=true", "f="})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	if want := `{"a":1,"b":2,"c":"hello","d":[1,2],"e":true,"f":""}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	if _, err := toolArguments("", []string{"novalue"}); err == nil {
		t.Error("an argument without = was accepted")
	}
}
