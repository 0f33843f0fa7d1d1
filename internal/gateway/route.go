package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flint-dev/flint/internal/platform"
)

// RoutePrefix is the path under which every agent is invoked:
// /v1/agents/{namespace}/{name}/{rest}.
const RoutePrefix = "/v1/agents/"

// Route is a parsed invocation path.
type Route struct {
	Agent platform.AgentKey
	// Path and RawPath are what the agent sees: the rest of the path after
	// the agent's prefix, always starting with "/". RawPath keeps the
	// client's escaping (e.g. %2F) so the agent receives the same bytes.
	Path    string
	RawPath string
}

// errNotAgentRoute means the path is outside RoutePrefix; other errors mean
// the path is under it but malformed.
var errNotAgentRoute = errors.New("not an agent route")

// ParseRoute splits an escaped request path into the agent it names and the
// path to forward. It refuses what could reach a different agent or escape
// the agent's prefix after decoding: encoded or empty name segments, names
// that are not DNS labels, and dot segments anywhere in the rest.
func ParseRoute(escapedPath string) (Route, error) {
	rest, ok := strings.CutPrefix(escapedPath, RoutePrefix)
	if !ok {
		return Route{}, errNotAgentRoute
	}
	ns, rest, _ := strings.Cut(rest, "/")
	name, rest, hasRest := strings.Cut(rest, "/")
	if err := checkLabel("namespace", ns); err != nil {
		return Route{}, err
	}
	if err := checkLabel("agent name", name); err != nil {
		return Route{}, err
	}
	raw := "/"
	if hasRest {
		// The rest with the slash before it: a slice of the path, not a copy.
		raw = escapedPath[len(escapedPath)-len(rest)-1:]
	}
	path, err := url.PathUnescape(raw)
	if err != nil {
		return Route{}, fmt.Errorf("path %q is not validly escaped: %w", raw, err)
	}
	if !utf8.ValidString(path) {
		return Route{}, fmt.Errorf("path %q is not valid UTF-8 once decoded", raw)
	}
	if strings.ContainsAny(path, "\x00\r\n") {
		return Route{}, fmt.Errorf("path %q has a NUL or line break once decoded", raw)
	}
	// path starts with "/", so a dot segment always follows a slash.
	if strings.Contains(path, "/.") {
		for seg := range strings.SplitSeq(path, "/") {
			if seg == "." || seg == ".." {
				return Route{}, fmt.Errorf("path %q has a dot segment; send the resolved path", raw)
			}
		}
	}
	r := Route{Agent: platform.AgentKey{Namespace: ns, Name: name}, Path: path}
	if raw != path {
		r.RawPath = raw
	}
	return r, nil
}

func checkLabel(what, s string) error {
	if s == "" {
		return fmt.Errorf("the %s is missing: use %s{namespace}/{name}/", what, RoutePrefix)
	}
	if isDNS1123Label(s) {
		return nil
	}
	// Only refusals pay for the regular expression, which words the reason.
	if msgs := validation.IsDNS1123Label(s); len(msgs) > 0 {
		return fmt.Errorf("%s %q is invalid: %s", what, truncate(s, 80), msgs[0])
	}
	return nil
}

// isDNS1123Label is validation.IsDNS1123Label without its regular
// expression, which ran twice on every request: 1 to 63 characters of
// [a-z0-9-], starting and ending with a letter or digit.
func isDNS1123Label(s string) bool {
	if len(s) == 0 || len(s) > validation.DNS1123LabelMaxLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '-' && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
