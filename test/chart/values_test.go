package chart

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flint-dev/flint/internal/testenv"
)

// freeForm are values whose children are Kubernetes API fields, documented
// by Kubernetes itself; their own key carries the comment.
var freeForm = map[string]bool{
	"resources": true, "podSecurityContext": true, "securityContext": true,
}

var keyLine = regexp.MustCompile(`^( *)([A-Za-z][A-Za-z0-9]*):(.*)$`)

// TestValuesDocumented requires a comment directly above every leaf key of
// values.yaml (a key with a value of its own, not a group of keys), except
// inside the Kubernetes-typed blocks listed in freeForm, and a row for it in
// the table of docs/chart-values.md.
func TestValuesDocumented(t *testing.T) {
	f, err := os.Open(filepath.Join(chartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(filepath.Join(root, "docs", "chart-values.md"))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		indent int
		name   string
	}
	var stack []key // enclosing keys
	prevComment := false
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			prevComment = true
			continue
		}
		m := keyLine.FindStringSubmatch(line)
		if m == nil {
			prevComment = false
			continue
		}
		indent, name, rest := len(m[1]), m[2], strings.TrimSpace(m[3])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		inFreeForm := false
		var path []string
		for _, k := range stack {
			inFreeForm = inFreeForm || freeForm[k.name]
			path = append(path, k.name)
		}
		path = append(path, name)
		leaf := rest != ""
		if (leaf || freeForm[name]) && !inFreeForm {
			if !prevComment {
				t.Errorf("values.yaml:%d: %s has no comment above it", n, strings.Join(path, "."))
			}
			if !bytes.Contains(table, []byte("| `"+strings.Join(path, ".")+"` |")) {
				t.Errorf("values.yaml:%d: %s is not in docs/chart-values.md", n, strings.Join(path, "."))
			}
		}
		stack = append(stack, key{indent, name})
		prevComment = false
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("read only %d lines of values.yaml", n)
	}
}
