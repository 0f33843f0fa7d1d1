package agentfile

import (
	"encoding/json"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// mentionsAgent reports whether a YAML file found in a directory looks like
// it means to define an Agent, and so must load without problems: one of
// its documents has an apiVersion in flint.dev, or a kind that is Agent or a
// near miss (Agnet, agents). Files that do not (a docker-compose.yml, a
// config.yaml, Kubernetes manifests, Helm templates) are skipped.
func mentionsAgent(data []byte) bool {
	for _, doc := range splitDocuments(data) {
		apiVersion, kind := typeOf(doc.data)
		if strings.HasPrefix(strings.ToLower(apiVersion), "flint.dev/") || isAgentKind(kind) {
			return true
		}
	}
	return false
}

// topLevel matches apiVersion and kind at the top of a document that is
// not valid YAML (a template), where decoding cannot tell.
var topLevel = regexp.MustCompile(`(?m)^(apiVersion|kind):[ \t]*["']?([^"'\s#]*)`)

// typeOf returns a document's apiVersion and kind, when it has them.
func typeOf(doc []byte) (apiVersion, kind string) {
	var obj map[string]any
	if j, err := yaml.YAMLToJSON(doc); err == nil && json.Unmarshal(j, &obj) == nil {
		apiVersion, _ = obj["apiVersion"].(string)
		kind, _ = obj["kind"].(string)
		return apiVersion, kind
	}
	for _, m := range topLevel.FindAllSubmatch(doc, -1) {
		if string(m[1]) == "apiVersion" {
			apiVersion = string(m[2])
		} else {
			kind = string(m[2])
		}
	}
	return apiVersion, kind
}

// isAgentKind reports whether kind is Agent or within a typo of it.
func isAgentKind(kind string) bool {
	k := strings.ToLower(strings.TrimSpace(kind))
	return k != "" && distance(k, "agent") <= 1 || k == "agents"
}
