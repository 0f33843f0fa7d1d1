package agentfile

import (
	"math"
	"reflect"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/flint-dev/flint/api/v1alpha1"
)

// checkTypes reports every value of obj whose JSON type does not fit the
// Agent's Go type at that place ("spec.concurrency: Invalid value: "ten":
// must be an integer"), and removes it from obj so the typed decode that
// follows can go on to report the document's other problems too. The typed
// decoder alone stops at the first mismatch and names Go types.
func checkTypes(obj map[string]any) []error {
	var errs []error
	checkValue(obj, reflect.TypeFor[v1alpha1.Agent](), nil, &errs, func() {})
	return errs
}

// checkValue checks v against t at path; drop removes v from its parent.
func checkValue(v any, t reflect.Type, path *field.Path, errs *[]error, drop func()) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v == nil || t == durationType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return // null is any type's zero; durations and self-decoders are checked elsewhere
	}
	bad := func(want string) {
		*errs = append(*errs, field.Invalid(path, v, "must be "+want))
		drop()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a mapping of fields (key: value)")
			return
		}
		checkStruct(m, t, path, errs)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("a mapping (key: value)")
			return
		}
		for k, e := range m {
			checkValue(e, t.Elem(), path.Key(k), errs, func() { delete(m, k) })
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok {
				bad("a base64 string")
			}
			return
		}
		l, ok := v.([]any)
		if !ok {
			bad("a list (- item, or [a, b])")
			return
		}
		for i, e := range l {
			checkValue(e, t.Elem(), path.Index(i), errs, func() { l[i] = nil })
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad(`a string (quote it: "…")`)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f, ok := v.(float64); !ok || f != math.Trunc(f) {
			bad("an integer")
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			bad("a number")
		}
	}
}

// checkStruct checks the fields of m that t has; unknown fields are the
// strict decoder's to report.
func checkStruct(m map[string]any, t reflect.Type, path *field.Path, errs *[]error) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" && (f.Anonymous || strings.Contains(opts, "inline")) {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				checkStruct(m, ft, path, errs)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if e, ok := m[name]; ok {
			child := field.NewPath(name)
			if path != nil {
				child = path.Child(name)
			}
			checkValue(e, f.Type, child, errs, func() { delete(m, name) })
		}
	}
}
