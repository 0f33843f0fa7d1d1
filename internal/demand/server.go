package demand

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flint-dev/flint/internal/platform"
	"github.com/flint-dev/flint/internal/secret"
	"github.com/flint-dev/flint/internal/wire"
)

// DefaultKeepAlive is how often an idle poke stream carries an empty line,
// so the collector can tell a quiet gateway from a dead connection.
const DefaultKeepAlive = 10 * time.Second

// pokeBuffer bounds the pokes queued per stream; beyond it they are
// dropped (the next scrape still shows the held requests).
const pokeBuffer = 256

// Source is the gateway as the server sees it.
type Source interface {
	Demand(key platform.AgentKey) wire.Demand
	DemandKeys() []platform.AgentKey
}

// Server is a gateway's control endpoint. It is the gateway's
// gateway.Scaler: Poke passes a held request on to every connected
// collector.
type Server struct {
	tokens    func() secret.Tokens
	instance  string
	keepAlive time.Duration
	log       *slog.Logger
	src       atomic.Pointer[Source]

	mu   sync.Mutex
	subs map[chan Record]struct{}
}

// NewServer returns a server that answers requests carrying token. Attach
// the gateway before serving.
func NewServer(token string, log *slog.Logger) *Server {
	return NewFollowingServer(func() secret.Tokens { return secret.Tokens{token} }, log)
}

// NewFollowingServer returns a server that answers requests carrying one
// of the tokens in use: tokens is called per request (a reload.Value's Get
// follows a rotated file).
func NewFollowingServer(tokens func() secret.Tokens, log *slog.Logger) *Server {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	return &Server{tokens: tokens, instance: hex.EncodeToString(id), keepAlive: DefaultKeepAlive, log: log,
		subs: map[chan Record]struct{}{}}
}

// Attach sets where demand comes from. The gateway needs the server (as
// its Scaler) before it exists, hence the separate step.
func (s *Server) Attach(src Source) { s.src.Store(&src) }

func (s *Server) source() Source {
	if p := s.src.Load(); p != nil {
		return *p
	}
	return nil
}

// Poke implements gateway.Scaler. It never blocks the request path.
func (s *Server) Poke(key platform.AgentKey) {
	src := s.source()
	if src == nil {
		return
	}
	rec := RecordOf(key, src.Demand(key))
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- rec:
		default:
		}
	}
}

// ServeHTTP serves DemandPath and PokesPath to holders of the token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !authorized(r.Header.Get("Authorization"), s.tokens()) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flint-gateway-control"`)
		http.Error(w, "missing or wrong control token", http.StatusUnauthorized)
		return
	}
	src := s.source()
	switch {
	case r.Method != http.MethodGet:
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
	case src == nil:
		http.Error(w, "gateway starting", http.StatusServiceUnavailable)
	case r.URL.Path == DemandPath:
		s.serveDemand(w, src)
	case r.URL.Path == PokesPath:
		s.servePokes(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveDemand(w http.ResponseWriter, src Source) {
	snap := Snapshot{Instance: s.instance, Agents: []Record{}}
	for _, key := range src.DemandKeys() {
		snap.Agents = append(snap.Agents, RecordOf(key, src.Demand(key)))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(snap)
}

// servePokes streams one JSON line per poke, and an empty line every
// keepAlive, until the collector goes away.
func (s *Server) servePokes(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch := make(chan Record, pokeBuffer)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}()
	// Poke streams outlive the server's write timeout, if it has one.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set(wire.HeaderInstance, s.instance)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	for {
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case rec := <-ch:
			if err := enc.Encode(rec); err != nil {
				return
			}
		case <-keepAlive.C:
			if _, err := w.Write([]byte("\n")); err != nil {
				return
			}
		}
	}
}
