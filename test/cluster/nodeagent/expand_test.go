package nodeagent

import "testing"

func TestExpandFollowsKubernetesRules(t *testing.T) {
	vars := map[string]string{"PORT": "8080", "HOST": "127.0.1.3", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	for in, want := range map[string]string{
		"plain":                "plain",
		"$(HOST):$(PORT)":      "127.0.1.3:8080",
		"-port=$(PORT)":        "-port=8080",
		"$(MISSING)":           "$(MISSING)",
		"a$(EMPTY)b":           "ab",
		"$$(PORT)":             "$(PORT)",
		"$$":                   "$",
		"cost $5":              "cost $5",
		"$(PORT":               "$(PORT",
		"trailing $":           "trailing $",
		"$(PORT)$(PORT)":       "80808080",
		"echo $1 and $HOME $$": "echo $1 and $HOME $",
	} {
		if got := expand(in, lookup); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}
