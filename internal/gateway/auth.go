package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/flint-dev/flint/internal/reload"
)

// AuthConfig turns on authentication of invocations. With neither API keys
// nor a JWKS URL, every agent is open; otherwise only agents with
// spec.public may be invoked without credentials.
type AuthConfig struct {
	// APIKeysFile holds one API key per line (blank lines and # comments
	// ignored), e.g. a mounted Secret.
	APIKeysFile string
	// JWKSURL is where the keys that sign accepted JWTs are published.
	JWKSURL string
	// JWTIssuer and JWTAudience, when set, must match the token's iss and aud.
	JWTIssuer   string
	JWTAudience string
}

// RegisterFlags binds the authentication flags.
func (c *AuthConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.APIKeysFile, "api-keys-file", c.APIKeysFile, "file of API keys, one per line, accepted as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'")
	fs.StringVar(&c.JWKSURL, "jwks-url", c.JWKSURL, "URL of a JWKS; JWTs signed by its keys are accepted as 'Authorization: Bearer JWT'")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", c.JWTIssuer, "required iss claim of accepted JWTs")
	fs.StringVar(&c.JWTAudience, "jwt-audience", c.JWTAudience, "required aud claim of accepted JWTs")
}

func (c *AuthConfig) enabled() bool { return c.APIKeysFile != "" || c.JWKSURL != "" }

// authenticator checks credentials. API keys are kept only as SHA-256
// digests and compared in constant time over every key, so neither memory
// dumps nor timing reveal them; no key or token is ever logged.
type authenticator struct {
	keys   *reload.Value[[][sha256.Size]byte] // follows -api-keys-file; nil without it
	jwks   keyfunc.Keyfunc
	parser *jwt.Parser
}

var errUnauthenticated = errors.New("missing or invalid credentials")

func newAuthenticator(ctx context.Context, cfg AuthConfig, log *slog.Logger) (*authenticator, error) {
	if !cfg.enabled() {
		return nil, nil
	}
	a := &authenticator{}
	if cfg.APIKeysFile != "" {
		// Keys added to or removed from the file (a mounted Secret) apply
		// within reload.Interval of the kubelet updating it; a file that
		// turns empty or invalid keeps the keys in use.
		keys, err := reload.File("API keys", cfg.APIKeysFile, func(data []byte) ([][sha256.Size]byte, error) {
			keys, err := parseAPIKeys(cfg.APIKeysFile, data)
			if err != nil {
				return nil, err
			}
			sums := make([][sha256.Size]byte, len(keys))
			for i, k := range keys {
				sums[i] = sha256.Sum256([]byte(k))
			}
			return sums, nil
		}, log)
		if err != nil {
			return nil, fmt.Errorf("-api-keys-file: %w", err)
		}
		a.keys = keys
	}
	if cfg.JWKSURL != "" {
		kf, err := keyfunc.NewDefaultCtx(ctx, []string{cfg.JWKSURL})
		if err != nil {
			return nil, fmt.Errorf("load JWKS from -jwks-url %s: %w", cfg.JWKSURL, err)
		}
		a.jwks = kf
		opts := []jwt.ParserOption{
			jwt.WithExpirationRequired(),
			jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}),
		}
		if cfg.JWTIssuer != "" {
			opts = append(opts, jwt.WithIssuer(cfg.JWTIssuer))
		}
		if cfg.JWTAudience != "" {
			opts = append(opts, jwt.WithAudience(cfg.JWTAudience))
		}
		a.parser = jwt.NewParser(opts...)
	}
	return a, nil
}

func parseAPIKeys(path string, data []byte) ([]string, error) {
	var keys []string
	s := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; s.Scan(); n++ {
		// A '#' at the start of a line or after a space starts a comment:
		// keys hold no spaces, and a '#' inside one stays part of it.
		key, rest, _ := strings.Cut(strings.TrimSpace(s.Text()), " ")
		if k, r, ok := strings.Cut(key, "\t"); ok {
			key, rest = k, r+" "+rest
		}
		if strings.HasPrefix(key, "#") {
			continue
		}
		if rest = strings.TrimSpace(rest); rest != "" && !strings.HasPrefix(rest, "#") {
			return nil, fmt.Errorf("-api-keys-file %s: line %d has a space inside a key: give one key per line, comments after a #", path, n)
		}
		if key == "" {
			continue
		}
		keys = append(keys, key)
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read -api-keys-file: %w", err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("-api-keys-file %s has no keys: add one key per line", path)
	}
	return keys, nil
}

// authenticate accepts a request carrying a known API key or a valid JWT.
// A Flint API key is removed before the request is forwarded, so agents
// never see the gateway's credentials; a JWT is passed on for the agent to
// read its claims.
func (a *authenticator) authenticate(r *http.Request) error {
	cred, fromHeader := credential(r.Header.Get("X-API-Key"), r.Header.Get("Authorization"))
	if cred == "" {
		return errUnauthenticated
	}
	if a.isAPIKey(cred) {
		r.Header.Del(fromHeader)
		a.stripAPIKeys(r.Header) // the key may ride in the other header too
		return nil
	}
	if a.parser != nil && fromHeader == "Authorization" {
		if _, err := a.parser.Parse(cred, a.jwks.Keyfunc); err == nil {
			return nil
		}
	}
	return errUnauthenticated
}

// credential is the one a request presents, and the header it came in: an
// X-API-Key value, else an "Authorization: Bearer" token.
func credential(apiKey, authorization string) (cred, from string) {
	if apiKey != "" {
		return apiKey, "X-API-Key"
	}
	if bearer, ok := bearerToken(authorization); ok {
		return bearer, "Authorization"
	}
	return "", ""
}

// stripAPIKeys removes the gateway's API keys from a request that skips
// authentication (a public agent's): a client that sends its key
// everywhere (flint invoke with $FLINT_TOKEN) must not hand it to the agent.
func (g *Gateway) stripAPIKeys(h http.Header) {
	if g.auth != nil {
		g.auth.stripAPIKeys(h)
	}
}

// stripAPIKeys removes every X-API-Key or "Authorization: Bearer" value
// that is one of the gateway's API keys, however the client sent it, so no
// agent sees a Flint credential; other values (an agent's own scheme) stay.
func (a *authenticator) stripAPIKeys(h http.Header) {
	for _, name := range []string{"X-Api-Key", "Authorization"} {
		vs, ok := h[name]
		if !ok {
			continue
		}
		kept := make([]string, 0, len(vs))
		for _, v := range vs {
			if !a.carriesAPIKey(name, v) {
				kept = append(kept, v)
			}
		}
		if len(kept) == 0 {
			delete(h, name)
		} else {
			h[name] = kept
		}
	}
}

// carriesAPIKey reports whether a value of the X-Api-Key or Authorization
// header (canonical name) is one of the gateway's API keys.
func (a *authenticator) carriesAPIKey(name, v string) bool {
	if name == "X-Api-Key" {
		return a.isAPIKey(strings.TrimSpace(v))
	}
	cred, bearer := bearerToken(v)
	return bearer && a.isAPIKey(cred)
}

// bearerToken is the credential of an "Authorization: Bearer" value; the
// scheme's name is case-insensitive (RFC 9110, section 11.1).
func bearerToken(v string) (string, bool) {
	const scheme = "Bearer "
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimSpace(v[len(scheme):]), true
}

func (a *authenticator) isAPIKey(cred string) bool {
	if a.keys == nil {
		return false
	}
	sum := sha256.Sum256([]byte(cred))
	keys := a.keys.Get()
	match := 0
	for i := range keys {
		match |= subtle.ConstantTimeCompare(sum[:], keys[i][:])
	}
	return match == 1
}

func errUnauthorized() *gatewayError {
	return &gatewayError{status: http.StatusUnauthorized, reason: "Unauthorized",
		message: "this agent needs credentials: send 'Authorization: Bearer <API key or JWT>'"}
}

// authenticated reports whether r may proceed, answering 401 when not.
func (g *Gateway) authenticated(w http.ResponseWriter, r *http.Request) bool {
	if g.auth == nil {
		return true
	}
	if err := g.auth.authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flint"`)
		errUnauthorized().write(w)
		return false
	}
	return true
}
