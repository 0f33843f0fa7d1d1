package podnet_test

import (
	"net"
	"os"
	"testing"

	"github.com/flint-dev/flint/test/cluster/podnet"
)

func TestMain(m *testing.M) {
	if !podnet.Inside() {
		os.Exit(podnet.Run())
	}
	os.Exit(m.Run())
}

func TestPodAddressesAreLocalAndLoopbackStillWorks(t *testing.T) {
	for _, addr := range []string{podnet.PodIPPrefix + "7:8080", podnet.PodIPPrefix + "8:8080", podnet.HostIP + ":0", "127.0.0.1:0"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		defer ln.Close()
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("dial %s: %v", ln.Addr(), err)
		}
		c.Close()
	}
	if ip := net.ParseIP(podnet.PodIPPrefix + "7"); ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		t.Fatalf("%s would be refused in an EndpointSlice", ip)
	}
}
