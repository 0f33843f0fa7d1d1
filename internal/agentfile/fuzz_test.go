package agentfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as an agent file. Load must never
// panic, must return either agents or an *Error whose every line names the
// file, and whatever it returns as loaded must be valid.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		agentYAML("echo"),
		"---\n" + agentYAML("a") + "---\n# comment\n---\n" + agentYAML("b") + "...\n",
		header + "spec:\n  container: {command: [x], port: 8080, env: [{name: A, value: b}]}\n  concurrency: 10\n" +
			"  scaling: {minReplicas: 1, maxReplicas: 3, target: 7, scaleToZeroAfter: 30s, stableWindow: 1m}\n" +
			"  timeouts: {request: 5m, coldStart: 1m}\n",
		header + "spec:\n  container:\n    command: [x]\n    port: 8080\n    readinessProbe: {httpGet: {path: /healthz, port: 8080}, periodSeconds: 1}\n",
		header + "spec: {scaling: {minReplicas: 5, maxReplicas: 2, scaleToZeroAfter: 30}}\n",
		"apiVersion: v1\nkind: List\nitems: []\n",
		"a: &a [*a, *a]\n",
		"--- {a: 1}\n--- [1, 2]\n--- 3\n--- |\n  text\n",
		"\uFEFFkey: \"\\u0000\"\n\t- bad\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "agent.yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := Load(file)
		if err != nil {
			var lerr *Error
			if !errors.As(err, &lerr) || len(lerr.Problems) == 0 || got != nil {
				t.Fatalf("Load returned %d agents and %#v", len(got), err)
			}
			for _, p := range lerr.Problems {
				if !strings.HasPrefix(p.Error(), file) {
					t.Fatalf("problem does not name the file: %s", p.Error())
				}
			}
			return
		}
		if len(got) == 0 {
			t.Fatal("no agents and no error")
		}
		seen := map[string]bool{}
		for _, l := range got {
			if errs := l.Agent.Validate(true); len(errs) > 0 {
				t.Fatalf("loaded an invalid agent: %v", errs)
			}
			if key := l.Agent.Namespace + "/" + l.Agent.Name; seen[key] {
				t.Fatalf("loaded %s twice", key)
			} else {
				seen[key] = true
			}
			if l.File != file || l.Dir != dir {
				t.Fatalf("File, Dir = %q, %q; want %q, %q", l.File, l.Dir, file, dir)
			}
		}
	})
}
