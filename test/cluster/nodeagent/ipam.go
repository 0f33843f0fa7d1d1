package nodeagent

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ipPool hands out pod IPs PREFIX1..PREFIX254.
//
// Addresses are handed out round-robin, not lowest-free, so an address just
// released (whose endpoint may still sit in an EndpointSlice as terminating)
// is not given to the next pod at once.
//
// Each address in use is also held as a lock: a listening Unix socket in
// the abstract namespace named after it. Only one socket can have a name,
// so node agents in different test processes (`go test ./...` runs
// packages in parallel) never hand out the same address even when they
// share a prefix. The kernel drops the socket when the process dies, so a
// crashed test leaks nothing, and nothing is left on disk. Abstract socket
// names, like IP addresses, belong to a network namespace, which is exactly
// the scope the lock needs.
type ipPool struct {
	prefix string

	mu   sync.Mutex
	next int                     // last octet to try first
	held map[string]net.Listener // address → its lock
}

const firstOctet, lastOctet = 1, 254

func newIPPool(prefix string) *ipPool {
	return &ipPool{prefix: prefix, next: firstOctet, held: map[string]net.Listener{}}
}

var errNoFreeIP = errors.New("no free pod IP")

// allocate returns a free address, locked for this process.
func (p *ipPool) allocate() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range lastOctet - firstOctet + 1 {
		octet := p.next
		p.next++
		if p.next > lastOctet {
			p.next = firstOctet
		}
		ip := p.prefix + strconv.Itoa(octet)
		if _, ok := p.held[ip]; ok {
			continue
		}
		// "@" makes Go use the abstract namespace: no file is created.
		lock, err := net.Listen("unix", "@flint-nodeagent-pod-ip/"+ip)
		if err != nil {
			continue // another process has it
		}
		p.held[ip] = lock
		return ip, nil
	}
	return "", fmt.Errorf("%w in %s%d-%d", errNoFreeIP, p.prefix, firstOctet, lastOctet)
}

// release gives ip back.
func (p *ipPool) release(ip string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if lock, ok := p.held[ip]; ok {
		lock.Close()
		delete(p.held, ip)
	}
}

func (p *ipPool) releaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, lock := range p.held {
		lock.Close()
		delete(p.held, ip)
	}
}
