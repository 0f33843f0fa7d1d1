package forward

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A response body read to its end keeps answering io.EOF (readers such as
// io.ReadAll's callers may read again), and reads after Close fail; the
// connection went back to the pool once, at the end.
func TestBodyEndIsSticky(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for range 2 {
			if _, err := c.Read(buf); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
		}
		time.Sleep(time.Second)
	}()
	tr := &Transport{Dial: (&net.Dialer{}).DialContext, Fallback: http.DefaultTransport, MaxIdlePerHost: 4}
	defer tr.CloseIdleConnections()
	for i := range 2 {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+ln.Addr().String()+"/", nil)
		res, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(res.Body)
		if err != nil || string(b) != "hello" {
			t.Fatalf("request %d: %q %v", i, b, err)
		}
		if n, err := res.Body.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("read after the end: %d %v, want 0 EOF", n, err)
		}
		res.Body.Close()
		if _, err := res.Body.Read(make([]byte, 8)); err == nil || err == io.EOF {
			t.Errorf("read after Close: %v, want an error", err)
		}
	}
	p := tr.pool(ln.Addr().String())
	p.mu.Lock()
	idle := len(p.idle)
	p.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d idle connections, want the one connection both requests used", idle)
	}
}
