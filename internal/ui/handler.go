package ui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
)

// Path is where the dashboard is mounted; StatePath is the JSON it polls.
const (
	Path      = "/ui/"
	StatePath = "/ui/api/state"
)

//go:embed static
var static embed.FS

// Handler serves the dashboard's page and assets under Path and its state
// under StatePath. Mount it for Path ("/ui/") on a mux; "/ui" redirects.
func (r *Recorder) Handler() http.Handler {
	assets, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix(Path, http.FileServerFS(assets))
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+StatePath, r.serveState)
	mux.HandleFunc("GET /ui", func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, Path, http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET "+Path, func(w http.ResponseWriter, req *http.Request) {
		// The page loads nothing from elsewhere; say so, so an injected
		// agent name can never pull in a script.
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, req)
	})
	return mux
}

// serveState answers the page's poll. ?since=SEQ limits points to those the
// page does not have yet.
func (r *Recorder) serveState(w http.ResponseWriter, req *http.Request) {
	var since uint64
	if s := req.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, "since must be a sample sequence number", http.StatusBadRequest)
			return
		}
		since = v
	}
	r.sampleIfStale()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = json.NewEncoder(w).Encode(r.State(since))
}
