package gateway

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/platform/platformtest"
)

// jwksServer publishes an RSA key as a JWKS and signs tokens with it.
type jwksServer struct {
	key *rsa.PrivateKey
	srv *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	set := map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &jwksServer{key: key, srv: srv}
}

func (j *jwksServer) token(t *testing.T, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(j.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthentication(t *testing.T) {
	_, _, p, last := countingAgent(t)
	pub := testAgent(0)
	pub.Name = "open"
	pub.Spec.Public = true
	pub.Default()
	p.SetAgent(pub)
	p.SetReady(platform.KeyOf(pub), mustEndpoints(p, echoKey)...)

	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte("# keys\nsecret-key-1  # alice\n\n\tsecret-key-2\t# bob, tab-separated\nkey#with-hash\n"), 0o600)
	jwks := newJWKSServer(t)
	_, gw := startGateway(t, p, nil, func(c *Config) {
		c.Auth = AuthConfig{APIKeysFile: keys, JWKSURL: jwks.srv.URL, JWTIssuer: "https://idp", JWTAudience: "flint"}
	})
	valid := jwt.MapClaims{"iss": "https://idp", "aud": "flint", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}
	expired := jwt.MapClaims{"iss": "https://idp", "aud": "flint", "exp": time.Now().Add(-time.Minute).Unix()}
	wrongAud := jwt.MapClaims{"iss": "https://idp", "aud": "other", "exp": time.Now().Add(time.Hour).Unix()}
	wrongIss := jwt.MapClaims{"iss": "https://evil", "aud": "flint", "exp": time.Now().Add(time.Hour).Unix()}

	cases := []struct {
		name, path, header, value string
		want                      int
	}{
		{"no credentials", "/v1/agents/default/echo/", "", "", 401},
		{"unknown agent without credentials is 401, not 404", "/v1/agents/default/nope/", "", "", 401},
		{"unknown agent with credentials is 404", "/v1/agents/default/nope/", "X-API-Key", "secret-key-1", 404},
		{"API key as bearer", "/v1/agents/default/echo/", "Authorization", "Bearer secret-key-2", 200},
		{"API key as bearer, scheme in lower case", "/v1/agents/default/echo/", "Authorization", "bearer secret-key-2", 200},
		{"API key header", "/v1/agents/default/echo/", "X-API-Key", "secret-key-1", 200},
		{"wrong API key", "/v1/agents/default/echo/", "X-API-Key", "secret-key-3", 401},
		{"valid JWT", "/v1/agents/default/echo/", "Authorization", "Bearer " + jwks.token(t, "k1", valid), 200},
		{"expired JWT", "/v1/agents/default/echo/", "Authorization", "Bearer " + jwks.token(t, "k1", expired), 401},
		{"JWT for another audience", "/v1/agents/default/echo/", "Authorization", "Bearer " + jwks.token(t, "k1", wrongAud), 401},
		{"JWT from another issuer", "/v1/agents/default/echo/", "Authorization", "Bearer " + jwks.token(t, "k1", wrongIss), 401},
		{"JWT with an unknown key id", "/v1/agents/default/echo/", "Authorization", "Bearer " + jwks.token(t, "k2", valid), 401},
		{"public agent needs nothing", "/v1/agents/default/open/", "", "", 200},
		{"agent list needs credentials", "/v1/agents", "", "", 401},
		{"metrics need credentials", "/metrics", "", "", 401},
		{"metrics with credentials", "/metrics", "X-API-Key", "secret-key-1", 200},
		{"dashboard state needs credentials", "/ui/api/state", "", "", 401},
		{"describe needs credentials", DescribePath + "default/open", "", "", 401},
		{"the comment is not part of the key", "/metrics", "X-API-Key", "secret-key-1  # alice", 401},
		{"a # inside a key is kept", "/metrics", "X-API-Key", "key#with-hash", 200},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", gw.URL+tc.path, nil)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		res, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, res.StatusCode, tc.want)
		}
		if res.StatusCode == 401 && res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}

	// Flint's API keys never reach the agent; a JWT does (agents read claims).
	req, _ := http.NewRequest("GET", gw.URL+"/v1/agents/default/echo/", nil)
	req.Header.Set("Authorization", "Bearer secret-key-1")
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := (*last).Get("Authorization"); got != "" {
		t.Errorf("the agent received the API key: %q", got)
	}

	// Nor does a public agent's, which skips authentication: a client may
	// send its key everywhere (flint invoke with $FLINT_TOKEN). The agent's
	// own scheme passes.
	for _, h := range []http.Header{
		{"X-Api-Key": {"secret-key-1"}},
		{"Authorization": {"BEARER  secret-key-2"}},
		{"X-Api-Key": {"secret-key-2"}, "Authorization": {"Bearer secret-key-1"}},
	} {
		req, _ := http.NewRequest("GET", gw.URL+"/v1/agents/default/open/", nil)
		req.Header = h
		res, err := client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("public agent with %v: %d", h, res.StatusCode)
		}
		if got := (*last).Values("X-Api-Key"); len(got) != 0 {
			t.Errorf("public agent sent %v received X-Api-Key %q", h, got)
		}
		if got := (*last).Values("Authorization"); len(got) != 0 {
			t.Errorf("public agent sent %v received Authorization %q", h, got)
		}
	}
	req, _ = http.NewRequest("GET", gw.URL+"/v1/agents/default/open/", nil)
	req.Header.Set("Authorization", "Bearer the-agent's-own")
	res, err = client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := (*last).Get("Authorization"); got != "Bearer the-agent's-own" {
		t.Errorf("a public agent's own credential reached it as %q", got)
	}
}

func TestAuthConfigErrors(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("# nothing\n"), 0o600)
	spaced := filepath.Join(t.TempDir(), "spaced")
	os.WriteFile(spaced, []byte("secret key\n"), 0o600)
	for _, cfg := range []AuthConfig{{APIKeysFile: "/does/not/exist"}, {APIKeysFile: empty}, {APIKeysFile: spaced}} {
		c := DefaultConfig()
		c.Auth = cfg
		if _, err := New(c, platformtest.New(), nil, discardLogger(), nil); err == nil {
			t.Errorf("%+v: no error", cfg)
		}
	}
}

func mustEndpoints(p *platformtest.Platform, key platform.AgentKey) []platform.Endpoint {
	eps, _ := p.ReadyEndpoints(key)
	return eps
}
