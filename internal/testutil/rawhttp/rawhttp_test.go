package rawhttp

import (
	"net/http"
	"testing"
)

func TestHeadAndParse(t *testing.T) {
	h := NewHead("POST", "/a/b", "x.example")
	h.Line("Content-Length", "5")
	h.Line("X-Empty", "")
	h.Raw("X-A: 1")
	h.Raw("X-B: 2\r\n")
	want := "POST /a/b HTTP/1.1\r\nHost: x.example\r\nContent-Length: 5\r\nX-A: 1\r\nX-B: 2\r\n\r\n"
	if got := h.String(); got != want {
		t.Fatalf("head %q, want %q", got, want)
	}
	for _, c := range []struct {
		raw             string
		parsed, waiting bool
	}{
		{want + "hello", true, false},
		{want + "hel", true, true}, // shorter than its Content-Length
		{"GET / HTTP/1.1\r\nNo colon\r\n\r\n", false, true},
	} {
		req, wait := Parse(c.raw)
		if (req != nil) != c.parsed || wait != c.waiting {
			t.Errorf("Parse(%q): parsed %v, wait %v; want %v, %v", c.raw, req != nil, wait, c.parsed, c.waiting)
		}
	}
}

func TestHopByHopLeak(t *testing.T) {
	for _, c := range []struct {
		got     http.Header
		upgrade string
		want    string
	}{
		{http.Header{"Te": {"trailers"}, "X-A": {"b"}}, "", ""},
		{http.Header{"Te": {"deflate"}}, "", "Te"},
		{http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, "websocket", ""},
		{http.Header{"Connection": {"Upgrade"}}, "", "Connection"},
		{http.Header{"Keep-Alive": {"timeout=5"}}, "", "Keep-Alive"},
	} {
		if got := HopByHopLeak(c.got, c.upgrade); got != c.want {
			t.Errorf("HopByHopLeak(%v, %q) = %q, want %q", c.got, c.upgrade, got, c.want)
		}
	}
	if named := ConnectionNamed(http.Header{"Connection": {" keep-alive , x-secret,"}}); !named["Keep-Alive"] || !named["X-Secret"] || len(named) != 2 {
		t.Errorf("ConnectionNamed: %v", named)
	}
}
