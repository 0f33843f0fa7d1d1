package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPeopleCommandsAgainstFlintUp runs the built binary's agents, invoke
// and describe against a real `flint up`: the first invoke cold-starts the
// agent, and describe then shows the poke that started it.
func TestPeopleCommandsAgainstFlintUp(t *testing.T) {
	base, _ := flintUp(t, writeAgents(t, echoAgent("echo", "")))
	flint := func(args ...string) (string, string, error) {
		cmd := exec.Command(flintBin, append(args, "-gateway", base)...)
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		return out.String(), errOut.String(), err
	}

	out, errOut, err := flint("agents")
	if err != nil || !strings.Contains(out, "default/echo") || !strings.Contains(out, "never") {
		t.Fatalf("agents before any invocation: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = flint("invoke", "echo", "-path", "/hello?x=1", "-d", `{"q":1}`)
	if err != nil || !strings.Contains(out, `"path":"/hello"`) || !strings.Contains(out, `"method":"POST"`) {
		t.Fatalf("invoke: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	out, errOut, err = flint("describe", "default/echo")
	if err != nil || !strings.Contains(out, "Recent scale decisions") || !strings.Contains(out, "poke") || !strings.Contains(out, "echo-") {
		t.Fatalf("describe: %v\n%s%s", err, out, errOut)
	}
	if _, errOut, err = flint("describe", "nope"); err == nil || !strings.Contains(errOut, "no agent default/nope") {
		t.Fatalf("describe nope: %v %s", err, errOut)
	}
}
