package agentfile

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// schema is the shape of an Agent as its JSON field names, derived from the
// Go types so it cannot drift from them.
var schema = buildSchema()

type agentSchema struct {
	// children maps a path ("" for the top, "spec.container.env[]" inside
	// lists) to the field names under it.
	children map[string][]string
	// durations are the paths of metav1.Duration fields outside lists.
	durations [][]string
}

var (
	durationType    = reflect.TypeFor[metav1.Duration]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

func buildSchema() agentSchema {
	s := agentSchema{children: map[string][]string{}}
	s.walk(reflect.TypeFor[v1alpha1.Agent](), nil, false)
	return s
}

func (s *agentSchema) walk(t reflect.Type, path []string, inList bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if len(path) > 12 { // no Agent field is this deep; guards against recursive types
		return
	}
	if t == durationType {
		if !inList {
			s.durations = append(s.durations, path)
		}
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return // decodes itself (Time, Quantity, IntOrString...): a leaf
	}
	switch t.Kind() {
	case reflect.Struct:
		key := strings.Join(path, ".")
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
				s.walk(f.Type, path, inList)
				continue
			}
			if name == "" {
				name = f.Name
			}
			s.children[key] = append(s.children[key], name)
			s.walk(f.Type, append(slices.Clone(path), name), inList)
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 && len(path) > 0 {
			p := slices.Clone(path)
			p[len(p)-1] += "[]"
			s.walk(t.Elem(), p, true)
		}
	}
}

var listIndex = regexp.MustCompile(`\[\d+\]`)

// suggest returns the field most likely meant by an unknown field path such
// as "spec.scaling.maxReplica" or "spec.minReplicas", or "".
func suggest(path string) string {
	parent, last := "", path
	if i := strings.LastIndex(path, "."); i >= 0 {
		parent, last = path[:i], path[i+1:]
	}
	// A misspelt sibling: same place, similar name.
	best, bestDist := "", maxTypos(last)+1
	for _, c := range schema.children[listIndex.ReplaceAllString(parent, "[]")] {
		if d := distance(strings.ToLower(last), strings.ToLower(c)); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		if parent == "" {
			return best
		}
		return parent + "." + best
	}
	// The right name at the wrong indentation: the shallowest field of that
	// name elsewhere, when there is exactly one at that depth.
	var match string
	depth, ambiguous := 1<<30, false
	for p, cs := range schema.children {
		for _, c := range cs {
			if !strings.EqualFold(c, last) || strings.Contains(p, "[]") {
				continue
			}
			full := strings.TrimPrefix(p+"."+c, ".")
			switch d := strings.Count(full, "."); {
			case d < depth:
				match, depth, ambiguous = full, d, false
			case d == depth:
				ambiguous = true
			}
		}
	}
	if ambiguous || match == path {
		return ""
	}
	return match
}

// maxTypos is how many edits a name may be off by to count as a misspelling.
func maxTypos(name string) int {
	switch {
	case len(name) <= 2:
		return 0 // only case differences
	case len(name) <= 6:
		return 1
	default:
		return 2
	}
}

// distance is the edit distance between a and b, counting insertions,
// deletions, substitutions and swaps of adjacent letters as one edit each.
func distance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
