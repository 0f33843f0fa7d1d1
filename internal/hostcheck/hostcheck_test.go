package hostcheck

import (
	"net/http/httptest"
	"testing"
)

func TestPolicy(t *testing.T) {
	p, err := New("127.0.0.1:8080", "http://flint.test:9000", []string{"my.box", "*.corp.example", "10.0.0.5:8080"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host, origin string
		want         string
	}{
		{"127.0.0.1:8080", "", ""},
		{"localhost:8080", "", ""},
		{"LOCALHOST", "", ""},
		{"app.localhost:8080", "", ""},
		{"[::1]:8080", "", ""},
		{"127.0.0.7:8080", "", ""},
		{"flint.test:9000", "", ""},
		{"my.box", "", ""},
		{"a.corp.example", "", ""},
		{"10.0.0.5", "", ""},
		{"", "", ""}, // HTTP/1.0 without Host: not a browser
		{"evil.example.com", "", ReasonHost},
		{"evil.example.com:8080", "", ReasonHost},
		{"corp.example", "", ReasonHost},
		{"127.0.0.1.nip.io", "", ReasonHost},
		{"localhost:8080", "http://localhost:3000", ""},
		{"localhost:8080", "http://flint.test:9000", ""},
		{"localhost:8080", "https://evil.example.com", ReasonOrigin},
		{"localhost:8080", "null", ReasonOrigin},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		reason, err := p.Check(r)
		if reason != tc.want || (reason == "") != (err == nil) {
			t.Errorf("Host %q Origin %q: reason %q (%v), want %q", tc.host, tc.origin, reason, err, tc.want)
		}
	}
}

func TestPolicyOnlyOnLoopbackOrWhenConfigured(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Host = "evil.example.com"
	for _, tc := range []struct {
		listen  string
		allowed []string
		refused bool
	}{
		{"127.0.0.1:8080", nil, true},
		{"localhost:8080", nil, true},
		{"[::1]:8080", nil, true},
		{":8080", nil, false},         // every interface: a deliberate exposure; use authentication
		{"0.0.0.0:8080", nil, false},  // the same
		{"10.1.2.3:8080", nil, false}, // a pod IP
		{":8080", []string{"flint.example.com"}, true},
		{"127.0.0.1:8080", []string{"*"}, false},
	} {
		p, err := New(tc.listen, "", tc.allowed)
		if err != nil {
			t.Fatal(err)
		}
		if reason, _ := p.Check(r); (reason != "") != tc.refused {
			t.Errorf("listen %s allowed %q: refused=%v, want %v", tc.listen, tc.allowed, reason != "", tc.refused)
		}
	}
	if _, err := New("127.0.0.1:1", "", []string{"http://x/"}); err == nil {
		t.Error("a URL in allowed hosts was accepted")
	}
}
