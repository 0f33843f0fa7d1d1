package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func newServer(t *testing.T) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	done := make(chan struct{}, 16) // a value per finished request
	h := newHandler(slog.New(slog.DiscardHandler), "test-addr")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		done <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

func TestEcho(t *testing.T) {
	srv, _ := newServer(t)
	req, _ := http.NewRequest("POST", srv.URL+"/v1/chat?a=1&a=2&b=x", strings.NewReader(`{"hello":"world"}`))
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	req.Header.Set("Traceparent", tp)
	req.Header.Set("X-Custom", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var e echo
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Method != "POST" || e.Path != "/v1/chat" || e.Body != `{"hello":"world"}` || e.Proto != "HTTP/1.1" ||
		!slices.Equal(e.Query["a"], []string{"1", "2"}) || e.Query["b"][0] != "x" ||
		e.Headers["Traceparent"][0] != tp || e.Headers["X-Custom"][0] != "yes" ||
		e.Host != strings.TrimPrefix(srv.URL, "http://") || e.Addr != "test-addr" || e.PID == 0 {
		t.Errorf("echo = %+v", e)
	}
}

func TestEchoBinaryBodyAndStatus(t *testing.T) {
	srv, _ := newServer(t)
	resp, err := http.Post(srv.URL+"/?status=201", "application/octet-stream", strings.NewReader("\xff\x00"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echo
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode != 201 || e.Body != "" || e.BodyBase64 != "/wA=" {
		t.Errorf("status %d, echo %+v", resp.StatusCode, e)
	}
}

func TestBadParameters(t *testing.T) {
	srv, _ := newServer(t)
	for _, q := range []string{"/?sleep=forever", "/?sleep=-1s", "/?status=99", "/sse?n=-1", "/sse?interval=fast", "/sse?sleep=1"} {
		resp, err := http.Get(srv.URL + q)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %d %s", q, resp.StatusCode, body)
		}
	}
}

func TestHealthz(t *testing.T) {
	srv, _ := newServer(t)
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestSleep(t *testing.T) {
	srv, _ := newServer(t)
	start := time.Now()
	resp, err := http.Get(srv.URL + "/?sleep=200ms")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if took := time.Since(start); resp.StatusCode != 200 || took < 200*time.Millisecond {
		t.Errorf("status %d after %v, want 200 after at least 200ms", resp.StatusCode, took)
	}
}

// TestSleepCancelled checks that a sleeping request ends when its client goes away.
func TestSleepCancelled(t *testing.T) {
	srv, done := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/?sleep=1m", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded, want a client timeout")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler still sleeping after the client went away")
	}
}

// TestSSE checks that events arrive one by one, not all at the end.
func TestSSE(t *testing.T) {
	srv, _ := newServer(t)
	start := time.Now()
	resp, err := http.Get(srv.URL + "/sse?n=3&interval=300ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	r := bufio.NewReader(resp.Body)
	for i := range 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		blank, _ := r.ReadString('\n')
		took := time.Since(start)
		if want := `data: {"i":` + string(rune('0'+i)) + "}\n"; line != want || blank != "\n" {
			t.Errorf("event %d = %q %q, want %q", i, line, blank, want)
		}
		// Event i is sent at i*300ms: it must arrive well before the next.
		if lo, hi := time.Duration(i)*300*time.Millisecond, time.Duration(i)*300*time.Millisecond+250*time.Millisecond; took < lo || took > hi {
			t.Errorf("event %d after %v, want between %v and %v", i, took, lo, hi)
		}
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Errorf("trailing data %q", rest)
	}
}
