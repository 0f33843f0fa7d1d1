package forward_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// A stream reaches the client event by event: the agent writes the second
// event only after the client has read the first.
func TestStreamFlushesPerWrite(t *testing.T) {
	for _, ct := range []string{"text/event-stream", "application/octet-stream"} {
		t.Run(ct, func(t *testing.T) {
			forEach(t, func(t *testing.T, rt http.RoundTripper) {
				read := make(chan struct{})
				a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", ct)
					for i := range 3 {
						fmt.Fprintf(w, "data: %d\n\n", i)
						w.(http.Flusher).Flush()
						select {
						case <-read:
						case <-time.After(5 * time.Second):
							return // the client never saw the event: the test fails below
						}
					}
				}))
				res, err := client().Get(front(t, rt, a.URL).URL)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				br := bufio.NewReader(res.Body)
				for i := range 3 {
					line, err := br.ReadString('\n')
					if err != nil || line != fmt.Sprintf("data: %d\n", i) {
						t.Fatalf("event %d: %q, %v", i, line, err)
					}
					br.ReadString('\n')
					read <- struct{}{}
				}
			})
		})
	}
}

// Response trailers pass through; request trailers are not relayed by
// ReverseProxy (it clones the request before the server has read them),
// with either transport.
func TestTrailers(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		var gotReqTrailer string
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			gotReqTrailer = r.Trailer.Get("X-Req-Sum")
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		}))
		req, _ := http.NewRequest("POST", front(t, rt, a.URL).URL, io.NopCloser(strings.NewReader("abc")))
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Req-Sum": {"7"}}
		res, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, res); b != "body" || res.Trailer.Get("X-Sum") != "42" {
			t.Errorf("body %q trailer %q, want body and X-Sum 42", b, res.Trailer.Get("X-Sum"))
		}
		if gotReqTrailer != "" {
			t.Errorf("request trailer reached the agent (%q): ReverseProxy relays none, with either transport", gotReqTrailer)
		}
	})
}

// 103 Early Hints reach the client before the final answer, and a client's
// Expect: 100-continue gets its 100 and then the agent's answer.
func TestInformationalResponses(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Expect") == "" && r.URL.Path == "/hints" {
				w.Header().Set("Link", "</style.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Del("Link")
			}
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "got %d bytes", len(b))
		}))
		srv := front(t, rt, a.URL)
		var hints []string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
			return nil
		}}
		req, _ := http.NewRequest("GET", srv.URL+"/hints", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		res, err := client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res)
		if len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
			t.Errorf("1xx seen by the client: %q, want one 103 with its Link", hints)
		}

		req, _ = http.NewRequest("POST", srv.URL+"/upload", strings.NewReader("0123456789"))
		req.Header.Set("Expect", "100-continue")
		res, err = client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if b := readAll(t, res); res.StatusCode != 200 || b != "got 10 bytes" {
			t.Errorf("Expect: 100-continue: %d %q", res.StatusCode, b)
		}
	})
}

// Hop-by-hop headers, and those the Connection header names, stay on their
// hop both ways; end-to-end headers pass.
func TestHopByHopHeaders(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		var seen http.Header
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			seen = r.Header.Clone()
			w.Header().Set("Connection", "X-Agent-Hop")
			w.Header().Set("X-Agent-Hop", "1")
			w.Header().Set("Keep-Alive", "timeout=5")
			w.Header().Set("X-End", "1")
		}))
		c, br := rawConn(t, front(t, rt, a.URL))
		io.WriteString(c, "GET /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Client-Hop\r\nX-Client-Hop: 1\r\n"+
			"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		readAll(t, res)
		for _, k := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Connection", "Connection"} {
			if v, ok := seen[k]; ok {
				t.Errorf("agent saw hop-by-hop %s: %q", k, v)
			}
		}
		if seen.Get("Traceparent") == "" || seen.Get("X-Forwarded-For") == "" || seen.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("agent missed end-to-end or forwarding headers: %v", seen)
		}
		if res.Header.Get("X-Agent-Hop") != "" || res.Header.Get("Keep-Alive") != "" || res.Header.Get("X-End") != "1" {
			t.Errorf("client got %v", res.Header)
		}
	})
}

// The agent answers while the request body is still arriving: the client
// sends a line, reads its echo, then sends the next.
func TestFullDuplex(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.NewResponseController(w).EnableFullDuplex()
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			sc := bufio.NewScanner(r.Body)
			for sc.Scan() {
				fmt.Fprintf(w, "echo %s\n", sc.Text())
				w.(http.Flusher).Flush()
			}
		}))
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", front(t, rt, a.URL).URL, pr)
		done := make(chan *http.Response, 1)
		go func() {
			res, err := client().Do(req)
			if err != nil {
				t.Error(err)
				pw.CloseWithError(err)
				close(done)
				return
			}
			done <- res
		}()
		io.WriteString(pw, "one\n")
		res := <-done
		if res == nil {
			return
		}
		defer res.Body.Close()
		br := bufio.NewReader(res.Body)
		for _, w := range []string{"one", "two", "three"} {
			if w != "one" {
				io.WriteString(pw, w+"\n")
			}
			line, err := br.ReadString('\n')
			if err != nil || line != "echo "+w+"\n" {
				t.Fatalf("echo of %q: %q, %v", w, line, err)
			}
		}
		pw.Close()
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Errorf("after the body ended: %q", rest)
		}
	})
}

// Bodies of known and unknown length keep their framing, and large ones
// arrive whole both ways.
func TestFramingAndLargeBodies(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Req-Length", fmt.Sprint(r.ContentLength))
			w.Header().Set("X-Req-TE", strings.Join(r.TransferEncoding, ","))
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			if r.URL.Query().Get("cl") == "1" {
				w.Header().Set("Content-Length", fmt.Sprint(n))
			}
			io.CopyN(w, strings.NewReader(strings.Repeat("z", int(n))), n)
		}))
		srv := front(t, rt, a.URL)
		const size = 8 << 20
		for _, tc := range []struct {
			known bool
			query string
		}{{true, "?cl=1"}, {false, ""}} {
			body := io.Reader(strings.NewReader(strings.Repeat("y", size)))
			if !tc.known {
				body = io.MultiReader(body) // hides the length
			}
			req, _ := http.NewRequest("PUT", srv.URL+tc.query, body)
			res, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := readAll(t, res)
			wantLen, wantTE := fmt.Sprint(size), ""
			if !tc.known {
				wantLen, wantTE = "-1", "chunked"
			}
			if res.Header.Get("X-Req-Length") != wantLen || res.Header.Get("X-Req-TE") != wantTE {
				t.Errorf("agent saw length %s TE %q, want %s %q", res.Header.Get("X-Req-Length"), res.Header.Get("X-Req-TE"), wantLen, wantTE)
			}
			if len(got) != size {
				t.Errorf("response of %d bytes, want %d", len(got), size)
			}
			if cl := res.ContentLength; (tc.query != "") != (cl == size) {
				t.Errorf("response Content-Length %d (agent set it: %v)", cl, tc.query != "")
			}
		}
	})
}

// HEAD, 204 and 304 have no body, and the connection to the agent is kept
// for the next request after each of them.
func TestBodilessAnswersKeepTheConnection(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/204":
				w.WriteHeader(204)
			case "/304":
				w.WriteHeader(304)
			default:
				w.Header().Set("Content-Length", "5")
				io.WriteString(w, "hello")
			}
		}))
		srv := front(t, rt, a.URL)
		c := client()
		for _, tc := range []struct{ method, path string }{{"HEAD", "/"}, {"GET", "/204"}, {"GET", "/304"}, {"GET", "/"}, {"HEAD", "/"}, {"GET", "/"}} {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b := readAll(t, res)
			want := "hello"
			if tc.method == "HEAD" || tc.path != "/" {
				want = ""
			}
			if b != want {
				t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, b, want)
			}
		}
		if n := a.conns.Load(); n != 1 {
			t.Errorf("agent saw %d connections for 6 sequential requests, want 1", n)
		}
	})
}

// Small bodies of known length (written with the header, without a
// goroutine, by forward.Transport) and larger ones arrive whole, and the
// connection is kept between them.
func TestBodiesKeepTheConnection(t *testing.T) {
	forEach(t, func(t *testing.T, rt http.RoundTripper) {
		a := newAgent(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d:%x", len(b), sha256.Sum256(b))
		}))
		srv := front(t, rt, a.URL)
		c := client()
		for _, n := range []int{1, 100, 4 << 10, 40 << 10, 10, 200 << 10, 3} {
			body := strings.Repeat("p", n)
			res, err := c.Post(srv.URL, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := readAll(t, res), fmt.Sprintf("%d:%x", n, sha256.Sum256([]byte(body))); got != want {
				t.Errorf("POST of %d bytes: agent got %q, want %q", n, got, want)
			}
		}
		if n := a.conns.Load(); n != 1 {
			t.Errorf("agent saw %d connections for 7 sequential POSTs, want 1", n)
		}
	})
}
