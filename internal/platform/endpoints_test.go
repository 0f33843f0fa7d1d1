package platform

import (
	"sync"
	"testing"
)

func TestEndpointSetWakesWaitersOnChange(t *testing.T) {
	var s EndpointSet
	key := AgentKey{Namespace: "ns", Name: "a"}
	eps, changed := s.Get(key)
	if len(eps) != 0 {
		t.Fatalf("new key has endpoints %v", eps)
	}
	s.Set(key, nil) // no change: no wake-up
	select {
	case <-changed:
		t.Fatal("woken without a change")
	default:
	}
	want := []Endpoint{{Addr: "127.0.0.1:1", Replica: "a-1"}}
	s.Set(key, want)
	<-changed
	got, changed2 := s.Get(key)
	if len(got) != 1 || got[0] != want[0] {
		t.Fatalf("got %v", got)
	}
	s.Delete(key)
	<-changed2
}

func TestEndpointSetConcurrent(t *testing.T) {
	var s EndpointSet
	key := AgentKey{Namespace: "ns", Name: "a"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				if i%2 == 0 {
					s.Set(key, []Endpoint{{Addr: "x", Replica: string(rune('a' + j%3))}})
				} else {
					eps, _ := s.Get(key)
					_ = len(eps)
				}
			}
		})
	}
	wg.Wait()
}
