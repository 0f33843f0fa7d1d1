package nodeagent

import (
	"strings"
	"testing"
)

// The pools use a prefix of their own so a parallel test process using
// the default prefix does not interfere.
const testPrefix = "127.0.254."

func TestIPPoolHandsOutDistinctAddressesRoundRobin(t *testing.T) {
	p := newIPPool(testPrefix)
	defer p.releaseAll()
	a, _ := p.allocate()
	b, _ := p.allocate()
	if a == b || !strings.HasPrefix(a, testPrefix) {
		t.Fatalf("allocate gave %q and %q", a, b)
	}
	p.release(a)
	c, _ := p.allocate()
	if c == a {
		t.Fatalf("released %s was handed out again at once", a)
	}
}

func TestIPPoolsNeverShareAnAddress(t *testing.T) {
	// Two pools stand for two test processes: an abstract socket name is
	// taken for everyone, this process included.
	p1 := newIPPool(testPrefix)
	defer p1.releaseAll()
	p2 := newIPPool(testPrefix)
	defer p2.releaseAll()
	seen := map[string]bool{}
	for i := range lastOctet {
		p := p1
		if i%2 == 1 {
			p = p2
		}
		ip, err := p.allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		if seen[ip] {
			t.Fatalf("%s handed out twice", ip)
		}
		seen[ip] = true
	}
	if _, err := p1.allocate(); err == nil {
		t.Fatal("allocated beyond the 254 addresses of the prefix")
	}
	p2.releaseAll()
	if _, err := p1.allocate(); err != nil {
		t.Fatalf("addresses released by the other pool are not reusable: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	err := Config{IPPrefix: "203.0.113.", HostIP: "x", RestartBackoff: 2, MaxRestartBackoff: 1}.withDefaults().validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"Client is required", "IPPrefix", "HostIP", "MaxRestartBackoff"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}
