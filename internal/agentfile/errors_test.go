package agentfile

import (
	"strings"
	"testing"
)

const header = "apiVersion: flint.dev/v1alpha1\nkind: Agent\nmetadata: {name: echo}\n"

// TestLoadErrors checks the exact text of every kind of problem.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		path  string // default "."
		want  []string
	}{
		{
			name: "validation: min above max",
			files: map[string]string{"examples/echo/agent.yaml": header +
				"spec:\n  container: {command: [./echo], port: 8080}\n  scaling: {minReplicas: 5, maxReplicas: 2}\n"},
			want: []string{"examples/echo/agent.yaml (document 1, agent default/echo): spec.scaling.minReplicas: Invalid value: 5: minReplicas (5) must not exceed maxReplicas (2)"},
		},
		{
			name:  "validation: every problem of a document",
			files: map[string]string{"a.yaml": header + "spec:\n  protocol: grpc\n  container: {port: 70000}\n  concurrency: 4\n  scaling: {target: 5, stableWindow: 1s}\n"},
			want: []string{
				`a.yaml (document 1, agent default/echo): spec.protocol: Unsupported value: "grpc": supported values: "http", "mcp", "a2a"`,
				"a.yaml (document 1, agent default/echo): spec.container.port: Invalid value: 70000: set port to the TCP port the agent listens on (1-65535)",
				`a.yaml (document 1, agent default/echo): spec.container.command: Required value: local mode runs command+args directly, from the agent file's directory: set command`,
				"a.yaml (document 1, agent default/echo): spec.scaling.target: Invalid value: 5: target (5) must not exceed concurrency (4): replicas can never hold more",
				`a.yaml (document 1, agent default/echo): spec.scaling.stableWindow: Invalid value: "1s": stableWindow must be between 6s and 1h0m0s`,
			},
		},
		{
			name:  "bad name and namespace",
			files: map[string]string{"a.yaml": "apiVersion: flint.dev/v1alpha1\nkind: Agent\nmetadata: {name: My_Agent, namespace: agents}\nspec: {container: {command: [x], port: 1}}\n"},
			want:  []string{`a.yaml (document 1, agent agents/My_Agent): metadata.name: Invalid value: "My_Agent": a DNS-1035 label must consist of lower case`},
		},
		{
			name:  "missing name",
			files: map[string]string{"a.yaml": "apiVersion: flint.dev/v1alpha1\nkind: Agent\nspec: {container: {command: [x], port: 1}}\n"},
			want:  []string{"a.yaml (document 1): metadata.name: Required value: give the agent a name"},
		},
		{
			name: "unknown fields, all of them, with suggestions",
			files: map[string]string{"a.yaml": header + `spec:
  minReplicas: 1
  container:
    command: [x]
    Port: 8080
    env: [{nme: A, value: b}]
  scaling: {maxReplica: 3, frobnicate: true}
`},
			want: []string{
				// In the order of the keys, sorted.
				"a.yaml (document 1, agent default/echo): spec.container.Port: unknown field (did you mean spec.container.port?)",
				"a.yaml (document 1, agent default/echo): spec.container.env[0].nme: unknown field (did you mean spec.container.env[0].name?)",
				"a.yaml (document 1, agent default/echo): spec.minReplicas: unknown field (did you mean spec.scaling.minReplicas?)",
				"a.yaml (document 1, agent default/echo): spec.scaling.frobnicate: unknown field",
				"a.yaml (document 1, agent default/echo): spec.scaling.maxReplica: unknown field (did you mean spec.scaling.maxReplicas?)",
				// The misspelt port is also missing; both lines point at the fix.
				"a.yaml (document 1, agent default/echo): spec.container.port: Invalid value: 0: set port",
			},
		},
		{
			name:  "wrong apiVersion",
			files: map[string]string{"a.yaml": "apiVersion: flint.dev/v1\nkind: Agent\nmetadata: {name: echo}\n"},
			want:  []string{`a.yaml (document 1): apiVersion: Unsupported value: "flint.dev/v1": supported values: "flint.dev/v1alpha1"`},
		},
		{
			name:  "wrong kind",
			files: map[string]string{"a.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: echo}\nspec: {replicas: 1}\n"},
			want: []string{
				`a.yaml (document 1): apiVersion: Unsupported value: "apps/v1": supported values: "flint.dev/v1alpha1"`,
				`a.yaml (document 1): kind: Unsupported value: "Deployment": supported values: "Agent"`,
			},
			path: "a.yaml", // a file found in a directory would be skipped
		},
		{
			name:  "missing apiVersion and kind",
			files: map[string]string{"a.yaml": "metadata: {name: echo}\n"},
			want: []string{
				"a.yaml (document 1): apiVersion: Required value: agent files hold only Flint agents: set apiVersion: flint.dev/v1alpha1",
				"a.yaml (document 1): kind: Required value: agent files hold only Flint agents: set kind: Agent",
			},
			path: "a.yaml", // a file found in a directory would be skipped
		},
		{
			name:  "not a mapping",
			files: map[string]string{"a.yaml": "- apiVersion: flint.dev/v1alpha1\n"},
			want:  []string{"a.yaml (document 1): the document is not a mapping: an agent starts with apiVersion: flint.dev/v1alpha1 and kind: Agent"},
			path:  "a.yaml", // a file found in a directory would be skipped
		},
		{
			name:  "YAML syntax error, line counted from the top of the file",
			files: map[string]string{"a.yaml": agentYAML("one") + "---\n" + header + "spec:\n  container: {port: 1\n"},
			want:  []string{"a.yaml (document 2): yaml: line 15: did not find expected ',' or '}'"},
		},
		{
			name:  "duplicate key",
			files: map[string]string{"a.yaml": header + "spec: {}\nspec: {}\n"},
			want:  []string{`a.yaml (document 1): yaml: unmarshal errors: line 5: key "spec" already set in map`},
		},
		{
			name:  "duration without unit",
			files: map[string]string{"a.yaml": header + "spec:\n  container: {command: [x], port: 1}\n  scaling: {scaleToZeroAfter: 30}\n  timeouts: {request: 5 minutes}\n"},
			want: []string{
				`a.yaml (document 1, agent default/echo): spec.scaling.scaleToZeroAfter: Invalid value: 30: must be a duration with a unit, such as "500ms", "30s", "5m" or "1h30m"`,
				`a.yaml (document 1, agent default/echo): spec.timeouts.request: Invalid value: "5 minutes": must be a duration`,
			},
		},
		{
			name: "wrong types, every one of them, then the other problems",
			files: map[string]string{"a.yaml": header + "spec:\n  container: {command: x, port: \"8080\", env: [{name: A, value: 1}]}\n" +
				"  concurrency: ten\n  scaling: {minReplicas: 1.5, maxReplicas: 2}\n  timeouts: {request: 5}\n  protocol: grpc\n"},
			want: []string{
				`a.yaml (document 1, agent default/echo): spec.timeouts.request: Invalid value: 5: must be a duration with a unit`,
				`a.yaml (document 1, agent default/echo): spec.container.command: Invalid value: "x": must be a list (- item, or [a, b])`,
				`a.yaml (document 1, agent default/echo): spec.container.port: Invalid value: "8080": must be an integer`,
				`a.yaml (document 1, agent default/echo): spec.container.env[0].value: Invalid value: 1: must be a string (quote it: "…")`,
				`a.yaml (document 1, agent default/echo): spec.concurrency: Invalid value: "ten": must be an integer`,
				`a.yaml (document 1, agent default/echo): spec.scaling.minReplicas: Invalid value: 1.5: must be an integer`,
				`a.yaml (document 1, agent default/echo): spec.protocol: Unsupported value: "grpc"`,
				`a.yaml (document 1, agent default/echo): spec.container.port: Invalid value: 0: set port`,
				`a.yaml (document 1, agent default/echo): spec.container.command: Required value`,
			},
		},
		{
			name:  "duplicate agent across files",
			files: map[string]string{"a/agent.yaml": agentYAML("echo"), "b/agent.yaml": agentYAML("echo")},
			want:  []string{"b/agent.yaml (document 1, agent default/echo): agent default/echo is defined twice: first in a/agent.yaml (document 1)"},
		},
		{
			name:  "duplicate agent within a file; other namespaces are distinct",
			files: map[string]string{"a.yaml": agentYAML("echo") + "---\n" + agentYAML("echo") + "---\n" + strings.Replace(agentYAML("echo"), "metadata:", "metadata:\n  namespace: other", 1)},
			want:  []string{"a.yaml (document 2, agent default/echo): agent default/echo is defined twice: first in a.yaml (document 1)"},
		},
		{
			name: "problems from every file, in order",
			files: map[string]string{
				"a.yaml": "kind: Agent\napiVersion: flint.dev/v1alpha1\n",
				"b.yaml": agentYAML("ok") + "---\n" + header + "spec: {container: {command: [x], port: 0}}\n",
			},
			want: []string{
				"a.yaml (document 1): metadata.name: Required value: give the agent a name",
				"a.yaml (document 1): spec.container.port: Invalid value: 0",
				"a.yaml (document 1): spec.container.command: Required value",
				"b.yaml (document 2, agent default/echo): spec.container.port: Invalid value: 0",
			},
		},
		{
			name:  "empty file",
			files: map[string]string{"a.yaml": "# nothing here\n---\n"},
			want:  []string{"a.yaml: no agents defined: expected documents with apiVersion: flint.dev/v1alpha1 and kind: Agent"},
			path:  "a.yaml",
		},
		{
			name:  "no agent files",
			files: map[string]string{"dir/README.md": "hi", "dir/.hidden/a.yaml": agentYAML("x")},
			path:  "dir",
			want:  []string{"dir: no agent files (*.yaml, *.yml) in this directory or below"},
		},
		{
			name:  "missing path",
			files: map[string]string{},
			path:  "examples",
			want:  []string{"examples: no such file or directory"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			writeTree(t, tc.files)
			path := tc.path
			if path == "" {
				path = "."
			}
			got, err := Load(path)
			if err == nil {
				t.Fatalf("no error; loaded %q", names(got))
			}
			if got != nil {
				t.Errorf("agents returned along with the error: %q", names(got))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], w)
				}
			}
		})
	}
}
