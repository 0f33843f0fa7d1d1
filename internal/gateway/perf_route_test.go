package gateway

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzDNS1123Label checks the hand-written label check against the
// regular expression it replaces on the hot path.
func FuzzDNS1123Label(f *testing.F) {
	for _, s := range []string{"", "a", "echo", "echo-1", "-a", "a-", "A", "a.b", "a_b", "0", "é", "a--b",
		strings.Repeat("a", 63), strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := len(validation.IsDNS1123Label(s)) == 0
		if got := isDNS1123Label(s); got != want {
			t.Fatalf("isDNS1123Label(%q) = %v, validation.IsDNS1123Label says %v", s, got, want)
		}
	})
}

// A route needing no unescaping is parsed without allocating: names and
// path are slices of the request path.
func TestParseRouteRawPathIsNotCopied(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParseRoute("/v1/agents/default/echo/a/b/c.json"); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ParseRoute of a valid path allocates %v times, want 0", n)
	}
}
