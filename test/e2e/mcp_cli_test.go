package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMCPCommandThroughGateway: `flint mcp` lists, calls (with progress
// printed as it arrives) and pings an MCP agent through the gateway, and
// `flint invoke` on an MCP agent sends the Accept header streamable HTTP
// requires.
func TestMCPCommandThroughGateway(t *testing.T) {
	file := writeAgents(t, mcpAgentYAML("mcp-go", exampleBin(t, "mcp-go"), "mcp", ""))
	base, _ := flintUp(t, file)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(flintBin, append(args, "-gateway", base)...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("flint %v did not finish:\n%s\n%s", args, out.String(), errOut.String())
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}

	out, errOut, code := run("mcp", "tools", "mcp-go")
	if code != 0 || !strings.Contains(out, "greet name=string\n    Say hello to someone") || !strings.Contains(out, "countdown from=integer [intervalMs=integer]") {
		t.Errorf("mcp tools: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run("mcp", "call", "mcp-go", "greet", "name=Ada")
	if code != 0 || !strings.Contains(out, "Hello, Ada!") {
		t.Errorf("mcp call greet: exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run("mcp", "call", "mcp-go", "countdown", "from=3", "intervalMs=20")
	if code != 0 || !strings.Contains(errOut, "progress 0/3: 3...") || !strings.Contains(errOut, "progress 2/3: 1...") {
		t.Errorf("mcp call countdown: exit %d, progress not printed\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = run("mcp", "ping", "mcp-go")
	if code != 0 || !strings.Contains(out, "default/mcp-go answered ping in") {
		t.Errorf("mcp ping: exit %d\n%s\n%s", code, out, errOut)
	}
	_, errOut, code = run("mcp", "call", "mcp-go", "countdown", "from=5000")
	if code != 1 || !strings.Contains(errOut, "reported an error") {
		t.Errorf("a tool error: exit %d\n%s", code, errOut)
	}

	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	out, errOut, code = run("invoke", "mcp-go", "-path", "/mcp", "-i", "-d", init)
	if code != 0 || !strings.Contains(out, "Mcp-Session-Id") || !strings.Contains(out, `"serverInfo"`) {
		t.Errorf("invoke initialize on an MCP agent: exit %d\n%s\n%s", code, out, errOut)
	}
}
