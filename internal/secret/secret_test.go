package secret

import (
	"strings"
	"testing"
)

func TestTokensDuringARotation(t *testing.T) {
	old, next := strings.Repeat("o", MinLength), strings.Repeat("n", MinLength)
	for _, tc := range []struct {
		name, file string
		presented  string
		accepts    []string
		refuses    []string
	}{
		{"one token", old + "\n", old, []string{old}, []string{next, "", old[1:]}},
		{"new one added below", "# rotating\n" + old + "\n\n" + next + "\n", old, []string{old, next}, []string{""}},
		{"swapped", "  " + next + "  \n" + old, next, []string{old, next}, []string{old + next}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ParseTokens([]byte(tc.file), "test token")
			if err != nil {
				t.Fatal(err)
			}
			if tok.Presented() != tc.presented {
				t.Errorf("presented %q, want %q", tok.Presented(), tc.presented)
			}
			for _, p := range tc.accepts {
				if !tok.Accepts(p) {
					t.Errorf("refuses %q", p)
				}
			}
			for _, p := range tc.refuses {
				if tok.Accepts(p) {
					t.Errorf("accepts %q", p)
				}
			}
		})
	}
}

func TestParseTokensRefusesShortAndEmpty(t *testing.T) {
	for _, file := range []string{"", "# only a comment\n", strings.Repeat("o", MinLength) + "\nshort\n"} {
		_, err := ParseTokens([]byte(file), "test token")
		if err == nil {
			t.Errorf("%q accepted", file)
			continue
		}
		if strings.Contains(err.Error(), "short\n") || strings.Contains(err.Error(), strings.Repeat("o", MinLength)) {
			t.Errorf("the error shows a token: %v", err)
		}
	}
}

// TestAcceptsDoesNotAllocate: the check runs on every request a sidecar
// serves, with tokens longer than a stack-held conversion.
func TestAcceptsDoesNotAllocate(t *testing.T) {
	tok := Tokens{strings.Repeat("o", 52), strings.Repeat("n", 52)}
	presented := strings.Repeat("n", 52)
	if n := testing.AllocsPerRun(100, func() { tok.Accepts(presented) }); n != 0 {
		t.Errorf("%v allocations per check, want 0", n)
	}
}
