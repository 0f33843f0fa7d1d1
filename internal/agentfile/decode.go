package agentfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/flint-dev/flint/api/v1alpha1"
)

const wantAPIVersion = "flint.dev/v1alpha1"

// decoded is one valid agent and the document it came from.
type decoded struct {
	index int
	agent *v1alpha1.Agent
}

// decodeFile decodes, defaults and validates every document of one file.
func decodeFile(file string, data []byte) ([]decoded, []Problem) {
	var out []decoded
	var problems []Problem
	for _, doc := range splitDocuments(bytes.TrimPrefix(data, []byte("\uFEFF"))) {
		a, name, errs := decodeDocument(doc)
		for _, err := range errs {
			problems = append(problems, Problem{File: file, Document: doc.index, Agent: name, Err: err})
		}
		if a != nil && len(errs) == 0 {
			out = append(out, decoded{index: doc.index, agent: a})
		}
	}
	return out, problems
}

// decodeDocument turns one YAML document into a defaulted, valid Agent. It
// returns a nil agent and no errors for an empty document, and the agent's
// "namespace/name" for messages as soon as it is known.
func decodeDocument(doc document) (*v1alpha1.Agent, string, []error) {
	j, err := yaml.YAMLToJSONStrict(doc.data)
	if err != nil {
		return nil, "", []error{yamlError(err, doc.line)}
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil, "", nil // only comments or nothing
	}
	var obj map[string]any
	if err := json.Unmarshal(j, &obj); err != nil {
		return nil, "", []error{errors.New("the document is not a mapping: an agent starts with apiVersion: " + wantAPIVersion + " and kind: Agent")}
	}
	if errs := checkType(obj); len(errs) > 0 {
		return nil, "", errs
	}
	name := agentName(obj)
	// Values of the wrong type are reported here, naming the field, and
	// removed, so the typed decode goes on to find the other problems.
	errs := append(checkDurations(obj), checkTypes(obj)...)
	if len(errs) > 0 {
		if j, err = json.Marshal(obj); err != nil {
			return nil, name, append(errs, err)
		}
	}

	a := &v1alpha1.Agent{}
	strict, err := sjson.UnmarshalStrict(j, a)
	if err != nil {
		return nil, name, append(errs, err)
	}
	for _, se := range strict {
		errs = append(errs, strictError(se))
	}
	a.Default()
	for _, fe := range a.Validate(true) {
		errs = append(errs, fe)
	}
	return a, name, errs
}

var lineNumber = regexp.MustCompile(`\bline (\d+):`)

// yamlError puts a YAML syntax error on one line, with line numbers counted
// from the start of the file rather than of the document.
func yamlError(err error, offset int) error {
	msg := strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")
	msg = lineNumber.ReplaceAllStringFunc(msg, func(m string) string {
		n, _ := strconv.Atoi(m[len("line ") : len(m)-1])
		return "line " + strconv.Itoa(n+offset) + ":"
	})
	msg = strings.ReplaceAll(msg, ":\n  ", ": ")
	return errors.New(strings.ReplaceAll(msg, "\n  ", "; "))
}

// checkType insists on apiVersion flint.dev/v1alpha1 and kind Agent.
func checkType(obj map[string]any) []error {
	var errs []error
	check := func(key, want string) {
		p := field.NewPath(key)
		switch v, ok := obj[key]; {
		case !ok || v == nil || v == "":
			errs = append(errs, field.Required(p, fmt.Sprintf("agent files hold only Flint agents: set %s: %s", key, want)))
		case v != want:
			errs = append(errs, field.NotSupported(p, v, []string{want}))
		}
	}
	check("apiVersion", wantAPIVersion)
	check("kind", "Agent")
	return errs
}

// agentName is "namespace/name" (namespace defaulted) when the document has a name.
func agentName(obj map[string]any) string {
	meta, _ := obj["metadata"].(map[string]any)
	name, _ := meta["name"].(string)
	if name == "" {
		return ""
	}
	ns, _ := meta["namespace"].(string)
	if ns == "" {
		ns = v1alpha1.DefaultNamespace
	}
	return ns + "/" + name
}

// checkDurations reports duration fields that are not Go duration strings
// and removes them from obj.
func checkDurations(obj map[string]any) []error {
	var errs []error
	for _, path := range schema.durations {
		var v any = obj
		var parent map[string]any
		for _, key := range path {
			parent, _ = v.(map[string]any)
			v = parent[key]
		}
		if v == nil {
			continue
		}
		delete(parent, path[len(path)-1]) // re-added below when valid
		if s, ok := v.(string); ok {
			if _, err := time.ParseDuration(s); err == nil {
				parent[path[len(path)-1]] = v
				continue
			}
		}
		errs = append(errs, field.Invalid(field.NewPath(path[0], path[1:]...), v,
			`must be a duration with a unit, such as "500ms", "30s", "5m" or "1h30m"`))
	}
	return errs
}

// strictError rewrites an unknown-field error to name the field first and
// suggest the field that was probably meant.
func strictError(err error) error {
	var fe sjson.FieldError
	if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "unknown field") {
		return err
	}
	msg := fe.FieldPath() + ": unknown field"
	if s := suggest(fe.FieldPath()); s != "" {
		msg += " (did you mean " + s + "?)"
	}
	return errors.New(msg)
}

// document is one YAML document of a file.
type document struct {
	index int    // 1-based, as a reader counts the documents of the file
	line  int    // lines of the file before the document
	data  []byte // the document
}

// splitDocuments splits a multi-document YAML stream at `---` (and `...`)
// lines. A document before the first `---` counts only when it has content;
// a document opened by `---` always counts, even when empty.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur []string // lines of the current document; nil when none is open
	explicit, start, count := false, 0, 0
	flush := func() {
		if cur != nil && (explicit || hasContent(cur)) {
			count++
			body := strings.Join(cur, "\n") + "\n"
			docs = append(docs, document{index: count, line: start, data: []byte(body)})
		}
		cur, explicit = nil, false
	}
	for i, line := range strings.Split(string(data), "\n") {
		switch {
		case isMarker(line, "---"):
			flush()
			// Content may follow the marker on the same line ("--- {a: 1}"):
			// keep it, blanking the marker so columns stay the same.
			cur, explicit, start = []string{"   " + line[3:]}, true, i
		case isMarker(line, "..."):
			flush()
		default:
			if cur == nil {
				start = i
			}
			cur = append(cur, line)
		}
	}
	flush()
	return docs
}

// isMarker reports whether line is a document marker: the marker at column 0
// followed by nothing or whitespace.
func isMarker(line, marker string) bool {
	if !strings.HasPrefix(line, marker) {
		return false
	}
	rest := line[len(marker):]
	return rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r'
}

// hasContent reports whether lines hold anything but blanks and comments.
func hasContent(lines []string) bool {
	for _, l := range lines {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}
