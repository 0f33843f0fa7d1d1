package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiagramIsCurrent fails when docs/architecture.md's package picture no
// longer matches the code: an import or a package was added or removed
// without regenerating it.
func TestDiagramIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	pkgs, err := load(root)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := splice(string(doc), render(pkgs))
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != want {
		t.Errorf("docs/architecture.md's package graph is stale: run `go run ./hack/pkggraph -w docs/architecture.md` and commit it; it should read:\n%s", render(pkgs))
	}
}

func TestBack(t *testing.T) {
	for _, c := range []struct {
		from, to string
		back     bool
	}{
		{"internal/gateway", "internal/platform", false},          // a role uses the seam
		{"internal/cli", "internal/gateway", false},               // wiring imports roles
		{"internal/autoscaler/sim", "internal/autoscaler", false}, // a package uses its parent
		{"internal/platform/local", "internal/proxy", false},      // allowed, with its reason
		{"internal/gateway", "internal/autoscaler", true},         // one role imports another
		{"internal/platform/kube", "internal/controller", true},
		{"internal/platform", "internal/gateway", true},   // the seam imports a role
		{"api/v1alpha1", "internal/controller", true},     // a contract imports a role
		{"internal/gatewaytoken", "internal/wire", false}, // within the contracts
		{"internal/gateway", "internal/cli", true},
	} {
		if got := back(c.from, c.to); got != c.back {
			t.Errorf("back(%s -> %s) = %v, want %v", c.from, c.to, got, c.back)
		}
	}
}

func TestSplice(t *testing.T) {
	doc := "intro\n" + beginMarker + "\nold\n" + endMarker + "\noutro\n"
	got, err := splice(doc, "new\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n" + beginMarker + "\nnew\n" + endMarker + "\noutro\n"; got != want {
		t.Errorf("splice:\n%s\nwant:\n%s", got, want)
	}
	if _, err := splice("no markers", "x"); err == nil || !strings.Contains(err.Error(), "pkggraph:begin") {
		t.Errorf("splice without markers: err = %v, want one naming the begin marker", err)
	}
}
