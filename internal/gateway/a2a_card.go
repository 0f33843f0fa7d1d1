package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// agentCardPaths are where A2A clients discover an agent: the current
// well-known path (A2A 0.3 and 1.0) and the legacy one (0.2).
var agentCardPaths = map[string]bool{
	"/.well-known/agent-card.json": true,
	"/.well-known/agent.json":      true,
}

// maxAgentCard bounds the card the gateway reads to rewrite.
const maxAgentCard = 1 << 20

// prepareA2A marks a request for the agent card and asks the agent for an
// uncompressed one, since the gateway rewrites it.
func prepareA2A(r *http.Request, c *call) {
	if r.Method == http.MethodGet && agentCardPaths[c.route.Path] {
		c.proto.agentCard = true
		r.Header.Del("Accept-Encoding")
	}
}

// rewriteAgentCard points the card's interface URLs at the gateway: the
// agent advertises the address it listens on, which clients cannot reach
// and which would bypass the gateway (scaling from zero, balancing, auth).
func (g *Gateway) rewriteAgentCard(res *http.Response, c *call) error {
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Encoding") != "" {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(res.Body, maxAgentCard+1))
	res.Body.Close() // gives the replica's slot back
	if err != nil {
		return fmt.Errorf("read the agent card of %s: %w", c.key, err)
	}
	if len(data) > maxAgentCard {
		return fmt.Errorf("the agent card of %s is larger than %d bytes", c.key, maxAgentCard)
	}
	base := strings.TrimSuffix(g.cfg.publicURL(), "/") + RoutePrefix + c.key.Namespace + "/" + c.key.Name
	if out, err := rewriteCardURLs(data, base); err != nil {
		g.log.Warn("agent card is not a JSON object; serving it unchanged", "agent", c.key, "error", err)
	} else {
		data = out
	}
	res.Body = io.NopCloser(bytes.NewReader(data))
	res.ContentLength = int64(len(data))
	res.Header.Set("Content-Length", strconv.Itoa(len(data)))
	return nil
}

// rewriteCardURLs rewrites the URLs clients call: "url" (A2A 0.2/0.3), and
// "url" of each entry of "additionalInterfaces" (0.3) and
// "supportedInterfaces" (1.0). Other URLs (documentation, icons, provider,
// OAuth endpoints) point elsewhere on purpose and are kept.
func rewriteCardURLs(data []byte, base string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep numbers exactly as the agent wrote them
	var card map[string]any
	if err := dec.Decode(&card); err != nil {
		return nil, err
	}
	rewriteURLField(card, base)
	for _, list := range []string{"additionalInterfaces", "supportedInterfaces"} {
		entries, _ := card[list].([]any)
		for _, e := range entries {
			if m, ok := e.(map[string]any); ok {
				rewriteURLField(m, base)
			}
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(card); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// rewriteURLField keeps the path and query the agent serves on and puts
// them under the agent's route on the gateway.
func rewriteURLField(m map[string]any, base string) {
	raw, ok := m["url"].(string)
	if !ok || strings.HasPrefix(raw, base) {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		return
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	out := base + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	m["url"] = out
}
