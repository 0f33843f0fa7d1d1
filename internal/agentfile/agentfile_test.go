package agentfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// agentYAML is a minimal valid agent named name.
func agentYAML(name string) string {
	return `apiVersion: flint.dev/v1alpha1
kind: Agent
metadata:
  name: ` + name + `
spec:
  container:
    command: ["./run.sh"]
    port: 8080
`
}

// writeTree creates files (path -> content) under a new temporary directory
// and makes it the working directory, so paths in messages are short.
func writeTree(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

func names(ls []Loaded) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Agent.Namespace+"/"+l.Agent.Name+"@"+filepath.ToSlash(l.File))
	}
	return out
}

func TestLoadFile(t *testing.T) {
	writeTree(t, map[string]string{"examples/echo/agent.yaml": `# The echo agent.
apiVersion: flint.dev/v1alpha1
kind: Agent
metadata: {name: echo}
spec:
  container:
    command: ["go", "run", "."]
    port: 8080
  concurrency: 10
  scaling: {maxReplicas: 5, scaleToZeroAfter: 45s}
`})
	got, err := Load("examples/echo/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d agents, want 1", len(got))
	}
	l := got[0]
	wd, _ := os.Getwd()
	if l.File != filepath.FromSlash("examples/echo/agent.yaml") || l.Dir != filepath.Join(wd, "examples", "echo") {
		t.Errorf("File, Dir = %q, %q", l.File, l.Dir)
	}
	a := l.Agent
	if a.APIVersion != "flint.dev/v1alpha1" || a.Kind != "Agent" || a.Namespace != "default" || a.Name != "echo" {
		t.Errorf("meta = %+v %+v", a.TypeMeta, a.ObjectMeta)
	}
	if !slices.Equal(a.Spec.Container.Command, []string{"go", "run", "."}) {
		t.Errorf("command = %q (no path rewriting expected)", a.Spec.Container.Command)
	}
	// Defaulted: every pointer set, explicit values kept.
	s := a.Spec
	if s.Protocol != v1alpha1.ProtocolHTTP || *s.Scaling.MinReplicas != 0 || *s.Scaling.MaxReplicas != 5 ||
		*s.Scaling.Target != 7 || s.Scaling.ScaleToZeroAfter.Duration != 45*time.Second ||
		s.Scaling.StableWindow == nil || s.Timeouts.Request == nil || s.Timeouts.ColdStart == nil {
		t.Errorf("not defaulted: %+v", s)
	}
}

func TestLoadDirectory(t *testing.T) {
	writeTree(t, map[string]string{
		"b/agent.yaml":           agentYAML("b"),
		"a/agent.yml":            agentYAML("a"),
		"a/nested/deep/x.YAML":   agentYAML("deep"),
		"c.yaml":                 "---\n" + agentYAML("c1") + "---\n# just a comment\n---\n" + agentYAML("c2") + "---\n",
		"notes.txt":              "not: yaml: at: all",
		".hidden/agent.yaml":     "broken: [",
		".hidden.yaml":           "broken: [",
		"b/testdata/bad.yaml":    "broken: [",
		"node_modules/x/a.yaml":  "broken: [",
		"vendor/mod/config.yaml": "broken: [",
	})
	got, err := Load(".")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"default/a@a/agent.yml", "default/deep@a/nested/deep/x.YAML",
		"default/b@b/agent.yaml", "default/c1@c.yaml", "default/c2@c.yaml",
	}
	if g := names(got); !slices.Equal(g, want) {
		t.Errorf("loaded\n got %q\nwant %q", g, want)
	}
	for _, l := range got {
		if !filepath.IsAbs(l.Dir) || filepath.Base(l.Dir) != filepath.Base(filepath.Dir(l.File)) && filepath.Dir(l.File) != "." {
			t.Errorf("%s: Dir = %q", l.File, l.Dir)
		}
	}
	// A hidden file named explicitly is loaded: only directory walks skip.
	if _, err := Load(".hidden.yaml"); err == nil {
		t.Error("explicitly named broken file loaded without error")
	}
}

func TestLoadErrorTypes(t *testing.T) {
	writeTree(t, map[string]string{"a.yaml": agentYAML("Bad_Name")})
	_, err := Load("a.yaml")
	var lerr *Error
	if !errors.As(err, &lerr) || len(lerr.Problems) != 1 {
		t.Fatalf("err = %#v, want *Error with one problem", err)
	}
	p := lerr.Problems[0]
	if p.File != "a.yaml" || p.Document != 1 || p.Agent != "default/Bad_Name" {
		t.Errorf("problem = %+v", p)
	}
	if _, err := Load("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
}

// TestSplitDocuments checks document numbering and line offsets.
func TestSplitDocuments(t *testing.T) {
	for _, tc := range []struct {
		in    string
		index []int
		line  []int
	}{
		{"", nil, nil},
		{"# only a comment\n\n", nil, nil},
		{"a: 1\n", []int{1}, []int{0}},
		{"---\na: 1\n", []int{1}, []int{0}},
		{"# header\n---\na: 1\n", []int{1}, []int{1}},
		{"a: 1\n---\nb: 2\n", []int{1, 2}, []int{0, 1}},
		{"a: 1\n---\n---\nb: 2\n---\n", []int{1, 2, 3, 4}, []int{0, 1, 2, 4}},
		{"a: 1\n--- # two\nb: 2\n", []int{1, 2}, []int{0, 1}},
		{"a: 1\n--- {b: 2}\n", []int{1, 2}, []int{0, 1}},
		{"a: 1\n...\n---\nb: 2\n", []int{1, 2}, []int{0, 2}},
		{"a: 1\r\n---\r\nb: 2\r\n", []int{1, 2}, []int{0, 1}},
		{"a: |\n  ---\nb: ----\n", []int{1}, []int{0}}, // not markers
	} {
		var index, line []int
		for _, d := range splitDocuments([]byte(tc.in)) {
			index, line = append(index, d.index), append(line, d.line)
		}
		if !slices.Equal(index, tc.index) || !slices.Equal(line, tc.line) {
			t.Errorf("split(%q): index %v line %v, want %v %v", tc.in, index, line, tc.index, tc.line)
		}
	}
}

func TestSuggest(t *testing.T) {
	for path, want := range map[string]string{
		"spce":                          "spec",
		"spec.scaling.maxReplica":       "spec.scaling.maxReplicas",
		"spec.scaling.MinReplicas":      "spec.scaling.minReplicas",
		"spec.minReplicas":              "spec.scaling.minReplicas",
		"spec.port":                     "spec.container.port",
		"spec.container.env[3].nme":     "spec.container.env[3].name",
		"spec.timeout":                  "spec.timeouts",
		"spec.coldStart":                "spec.timeouts.coldStart",
		"metadata.label":                "metadata.labels",
		"spec.container.command2":       "spec.container.command",
		"spec.frobnicate":               "",
		"spec.container.readinessProbe": "", // a known field is never "meant"
	} {
		if got := suggest(path); got != want && !(want == "" && got == path) {
			t.Errorf("suggest(%q) = %q, want %q", path, got, want)
		}
	}
	if len(schema.durations) != 4 {
		t.Errorf("duration fields = %v, want the 4 of scaling and timeouts", schema.durations)
	}
}

func TestErrorJoinsLines(t *testing.T) {
	e := &Error{Problems: []Problem{
		{File: "a.yaml", Err: errors.New("one")},
		{File: "b.yaml", Document: 2, Err: errors.New("two")},
		{File: "c.yaml", Document: 1, Agent: "default/c", Err: errors.New("three")},
	}}
	want := "a.yaml: one\nb.yaml (document 2): two\nc.yaml (document 1, agent default/c): three"
	if e.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", e.Error(), want)
	}
	if !strings.Contains(e.Error(), "two") || !errors.Is(e, e.Problems[1].Err) {
		t.Error("problems are not unwrapped")
	}
}

// TestLoadExamples loads the repository's own examples, as `flint up -f
// examples/` does.
func TestLoadExamples(t *testing.T) {
	got, err := Load(filepath.Join("..", "..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	var echo *Loaded
	for i := range got {
		if got[i].Agent.Namespace == "default" && got[i].Agent.Name == "echo" {
			echo = &got[i]
		}
	}
	if echo == nil {
		t.Fatalf("no default/echo among %q", names(got))
	}
	if filepath.Base(echo.Dir) != "echo" || !slices.Equal(echo.Agent.Spec.Container.Command, []string{"./run.sh"}) {
		t.Errorf("echo: Dir %q, command %q", echo.Dir, echo.Agent.Spec.Container.Command)
	}
	if _, err := os.Stat(filepath.Join(echo.Dir, "run.sh")); err != nil {
		t.Error(err)
	}
}

// TestLoadSkipsFilesThatDefineNoAgent: a directory may hold other YAML (a
// docker-compose.yml, Kubernetes manifests, Helm templates); those files are
// skipped and listed, while an Agent with a typo in kind still fails.
func TestLoadSkipsFilesThatDefineNoAgent(t *testing.T) {
	writeTree(t, map[string]string{
		"echo/agent.yaml":              agentYAML("echo"),
		"docker-compose.yml":           "services:\n  web: {image: nginx}\n",
		"config.yaml":                  "debug: true\n",
		"deploy/crd.yaml":              "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nspec:\n  names:\n    kind: Agent\n",
		"deploy/templates/deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  {{- include \"x\" . }}\n",
	})
	set, err := LoadAll([]string{"."})
	if err != nil {
		t.Fatal(err)
	}
	if g := names(set.Agents); !slices.Equal(g, []string{"default/echo@echo/agent.yaml"}) {
		t.Errorf("loaded %q", g)
	}
	want := []string{"config.yaml", "deploy/crd.yaml", "deploy/templates/deploy.yaml", "docker-compose.yml"}
	if !slices.Equal(set.Skipped, want) {
		t.Errorf("skipped\n got %q\nwant %q", set.Skipped, want)
	}

	for _, typo := range []string{
		strings.Replace(agentYAML("x"), "kind: Agent", "kind: Agnet", 1),
		strings.Replace(agentYAML("x"), "kind: Agent", "kind: agents", 1),
		strings.Replace(agentYAML("x"), "kind: Agent", "kind: Service", 1), // apiVersion flint.dev
		"apiVersion: flint.dev/v1alpha1\nkind: Agent\nmetadata: {name: {{ .Name }}}\n",
	} {
		writeTree(t, map[string]string{"typo/agent.yaml": typo})
		if _, err := LoadAll([]string{"typo"}); err == nil {
			t.Errorf("a directory with an Agent-looking file loaded without error:\n%s", typo)
		}
	}

	writeTree(t, map[string]string{"other/a.yaml": "a: 1\n", "other/b.yml": "b: 2\n"})
	_, err = LoadAll([]string{"other"})
	if err == nil || !strings.Contains(err.Error(), "other: no agents defined: 2 YAML files, none with apiVersion: flint.dev/v1alpha1 and kind: Agent") {
		t.Errorf("a directory of other YAML: %v", err)
	}
}

// TestLoadAllPaths loads several paths as one set.
func TestLoadAllPaths(t *testing.T) {
	writeTree(t, map[string]string{"a/agent.yaml": agentYAML("a"), "b.yaml": agentYAML("b"), "c/agent.yaml": agentYAML("a")})
	set, err := LoadAll([]string{"a", "b.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	if g := names(set.Agents); !slices.Equal(g, []string{"default/a@a/agent.yaml", "default/b@b.yaml"}) {
		t.Errorf("loaded %q", g)
	}
	if _, err := LoadAll([]string{"a", "c"}); err == nil || !strings.Contains(err.Error(), "defined twice") {
		t.Errorf("the same agent in two paths: %v", err)
	}
}
