package h1relay

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dropFlint refuses every X-Flint-* header, as the sidecar's DropResponse
// does: those headers are the sidecar's own and an agent must not forge them.
func dropFlint(name []byte) bool {
	const prefix = "X-Flint-"
	return len(name) >= len(prefix) && equalFold(name[:len(prefix)], prefix)
}

// relayBytes runs relay over the upstream bytes in and returns what reached
// the client once the caller's final flush is done.
func relayBytes(in []byte, isHead, close bool) (Response, []byte, error) {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	rl := relayer{drop: dropFlint}
	res, err := relayWith(&rl, bufio.NewReader(bytes.NewReader(in)), w, isHead, close)
	_ = w.Flush()
	return res, out.Bytes(), err
}

// relayWith calls relay, the one place that knows its signature; close is
// what the closing hook answers.
func relayWith(rl *relayer, up *bufio.Reader, w *bufio.Writer, isHead, close bool) (Response, error) {
	return rl.relay(up, w, isHead, func() bool { return close })
}

// clientView is the client's parse of the relayed bytes.
type clientView struct {
	interim []*http.Response
	final   *http.Response
	body    []byte
	rest    []byte // bytes after the final answer: must be none
}

// readClientView parses out the way an HTTP/1.1 client does: interim
// answers, then one final answer and its body read to the end.
func readClientView(out []byte, isHead bool) (clientView, error) {
	var v clientView
	br := bufio.NewReader(bytes.NewReader(out))
	req := &http.Request{Method: http.MethodGet}
	if isHead {
		req.Method = http.MethodHead
	}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return v, fmt.Errorf("ReadResponse: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			v.final = resp
			break
		}
		if len(v.interim) == max1xx {
			return v, fmt.Errorf("more than %d interim answers written", max1xx)
		}
		v.interim = append(v.interim, resp)
	}
	body, err := io.ReadAll(v.final.Body)
	v.body = body
	if err != nil {
		return v, fmt.Errorf("reading body: %w", err)
	}
	v.rest, _ = io.ReadAll(br)
	return v, nil
}

func TestRelayResponses(t *testing.T) {
	for _, tc := range relayCases {
		t.Run(tc.name, func(t *testing.T) {
			res, out, err := relayBytes([]byte(tc.in), tc.isHead, tc.close)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if res.Started != tc.wantStarted {
					t.Errorf("Started = %v, want %v", res.Started, tc.wantStarted)
				}
				if !res.Started && len(out) > 0 {
					t.Errorf("not started, yet wrote %q", out)
				}
				if res.Reusable {
					t.Errorf("Reusable after an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("relay: %v", err)
			}
			if !res.Started {
				t.Errorf("Started = false after a relayed answer")
			}
			if res.Status != tc.status {
				t.Errorf("Status = %d, want %d", res.Status, tc.status)
			}
			if res.Reusable != tc.reusable {
				t.Errorf("Reusable = %v, want %v", res.Reusable, tc.reusable)
			}
			if !strings.HasPrefix(string(out), tc.prefix) {
				t.Errorf("output starts %q, want %q", truncate(out), tc.prefix)
			}
			v, err := readClientView(out, tc.isHead)
			if err != nil {
				t.Fatalf("client cannot read %q: %v", out, err)
			}
			checkView(t, tc, v)
			if tc.check != nil {
				tc.check(t, string(out), v)
			}
		})
	}
}

func checkView(t *testing.T, tc relayCase, v clientView) {
	t.Helper()
	var codes []int
	for _, r := range v.interim {
		codes = append(codes, r.StatusCode)
	}
	if fmt.Sprint(codes) != fmt.Sprint(tc.interim) {
		t.Errorf("interim answers %v, want %v", codes, tc.interim)
	}
	r := v.final
	if r.StatusCode != tc.status {
		t.Errorf("client sees %d, want %d", r.StatusCode, tc.status)
	}
	if r.ProtoMajor != 1 || r.ProtoMinor != 1 {
		t.Errorf("client sees %s, want HTTP/1.1", r.Proto)
	}
	for k, want := range tc.header {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != want {
			t.Errorf("header %s = %q, want [%q]", k, got, want)
		}
	}
	for _, k := range tc.absent {
		if vs, ok := r.Header[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("header %s passed on: %q", k, vs)
		}
	}
	if k := "Transfer-Encoding"; tc.chunked != (len(r.TransferEncoding) == 1 && r.TransferEncoding[0] == "chunked") {
		t.Errorf("%s %q, want chunked %v", k, r.TransferEncoding, tc.chunked)
	}
	if got := r.Header.Get("Content-Length"); got != tc.cl {
		t.Errorf("Content-Length %q, want %q", got, tc.cl)
	}
	if r.Close != tc.close {
		t.Errorf("client told close=%v, want %v", r.Close, tc.close)
	}
	if string(v.body) != tc.body {
		t.Errorf("body %q, want %q", v.body, tc.body)
	}
	for k, want := range tc.trailer {
		if got := r.Trailer.Get(k); got != want {
			t.Errorf("trailer %s = %q, want %q", k, got, want)
		}
	}
	for _, k := range tc.notrailer {
		if vs, ok := r.Trailer[http.CanonicalHeaderKey(k)]; ok {
			t.Errorf("trailer %s passed on: %q", k, vs)
		}
	}
	if len(v.rest) > 0 {
		t.Errorf("bytes after the answer: %q", v.rest)
	}
}

// TestRelayInterimFlushedBeforeFinal: an Early Hints answer is worth
// something only if the client has it while the final answer is produced.
func TestRelayInterimFlushedBeforeFinal(t *testing.T) {
	upW, br, done := pipeRelay(t)
	go func() { _, _ = upW.Write([]byte("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n")) }()
	resp := readWithin(t, func() (*http.Response, error) { return http.ReadResponse(br, nil) })
	if resp.StatusCode != 103 {
		t.Fatalf("first answer %d, want 103", resp.StatusCode)
	}
	go func() { _, _ = upW.Write([]byte(okCL)) }()
	resp = readWithin(t, func() (*http.Response, error) { return http.ReadResponse(br, nil) })
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello" {
		t.Errorf("final %d %q", resp.StatusCode, body)
	}
	if err := <-done; err != nil {
		t.Errorf("relay: %v", err)
	}
}

func readWithin[T any](t *testing.T, f func() (T, error)) T {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.v
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached the client: bytes held in the relay's writer")
	}
	panic("unreachable")
}

// FuzzRelayFramesOneResponse: whatever an upstream sends, what the relay
// writes to a keep-alive client is exactly one well-framed answer (after
// any interim ones), or nothing at all when it refuses before starting.
// A second answer in the output, or a body the client can delimit only by
// the connection closing, would let an upstream answer requests it was not
// asked (response splitting).
func FuzzRelayFramesOneResponse(f *testing.F) {
	for _, tc := range relayCases {
		if len(tc.in) < 64<<10 {
			f.Add([]byte(tc.in), tc.isHead, tc.close)
		}
	}
	f.Add([]byte(okCL+okCL), false, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), false, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n\r\n"), false, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), true, false)
	f.Fuzz(func(t *testing.T, in []byte, isHead, close bool) {
		res, out, err := relayBytes(in, isHead, close)
		if err != nil {
			if !res.Started && len(out) > 0 {
				t.Fatalf("error %v before starting, yet wrote %q", err, out)
			}
			return
		}
		v, perr := readClientView(out, isHead)
		if perr != nil {
			t.Fatalf("relay accepted %q but the client cannot read %q: %v", in, out, perr)
		}
		r := v.final
		if len(v.rest) > 0 {
			t.Fatalf("bytes after the answer (a second response?): %q\ninput %q", v.rest, in)
		}
		if r.StatusCode != res.Status {
			t.Fatalf("client sees %d, relay reported %d", r.StatusCode, res.Status)
		}
		if r.StatusCode < 200 {
			t.Fatalf("final answer %d", r.StatusCode)
		}
		hasBody := !isHead && r.StatusCode != 204 && r.StatusCode != 304
		if hasBody && r.ContentLength < 0 && len(r.TransferEncoding) == 0 {
			t.Fatalf("body delimited only by the connection closing: %q\ninput %q", out, in)
		}
		if r.Close != close {
			t.Fatalf("client told close=%v, want %v: %q", r.Close, close, out)
		}
		for _, resp := range append(v.interim, r) {
			for _, h := range []http.Header{resp.Header, resp.Trailer} {
				for k, vs := range h {
					// A Trailer header's names are in resp.Trailer
					// without values until the trailer comes; naming
					// X-Flint-* is no forgery.
					if len(vs) > 0 && dropFlint([]byte(k)) {
						t.Fatalf("%s passed on: %q", k, out)
					}
				}
			}
		}
	})
}
