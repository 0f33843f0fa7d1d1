package bodyrate

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// serve reads each request body through a Reader and reports what it got.
func serve(t *testing.T, cfg Config, result chan<- error) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, b := Wrap(w, r.Body, cfg)
		_, err := io.Copy(io.Discard, body)
		if err == nil && b.TooSlow() {
			err = errors.New("TooSlow without an error")
		}
		result <- err
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

func TestTricklingBodyIsCut(t *testing.T) {
	result := make(chan error, 1)
	addr := serve(t, Config{MinRate: 100, Grace: 200 * time.Millisecond}, result)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
	start := time.Now()
	go func() {
		for range 100 {
			if _, err := conn.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // 20 bytes/s
		}
	}()
	select {
	case err := <-result:
		if !errors.Is(err, ErrTooSlow) {
			t.Fatalf("body read ended with %v, want ErrTooSlow", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("cut after %s, want about the grace period", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a body at 20 bytes/s was read for 10s with a minimum of 100")
	}
}

func TestSilentBodyIsCut(t *testing.T) {
	result := make(chan error, 1)
	addr := serve(t, Config{MinRate: 100, Grace: 100 * time.Millisecond}, result)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
	select {
	case err := <-result:
		if !errors.Is(err, ErrTooSlow) {
			t.Fatalf("got %v, want ErrTooSlow", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a body that never came was waited for")
	}
}

func TestFastBodyAndKeepAlive(t *testing.T) {
	result := make(chan error, 2)
	addr := serve(t, Config{MinRate: 1000, Grace: 50 * time.Millisecond}, result)
	c := &http.Client{}
	for range 2 {
		res, err := c.Post("http://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("y", 1<<20)))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if err := <-result; err != nil {
			t.Fatalf("a fast body failed: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // longer than the grace: the deadline must be gone
	}
}
