// Package serviceproxy is the cluster end-to-end harness's kube-proxy: it
// makes Services' ClusterIPs reachable, as kube-proxy's old userspace mode
// did, by listening on every ClusterIP:port and copying each connection to
// a ready endpoint of the Service chosen at random. A Service port with no
// ready endpoint refuses connections (nothing listens), as kube-proxy's
// REJECT rule makes it.
//
// It watches Services and EndpointSlices like kube-proxy, so a newly ready
// pod becomes reachable through its Service a watch event after the
// EndpointSlice controller publishes it; the real kube-proxy adds the time
// to program iptables or IPVS on every node on top, which is why Flint's
// gateway routes to pods directly and uses ClusterIPs only as a fallback.
//
// ClusterIPs must be local addresses: run in test/cluster/podnet and give
// the API server a Service range inside podnet.CIDR
// (testenv.Options.ServiceCIDR). Only TCP ports are served.
package serviceproxy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Proxy serves ClusterIPs until Stop.
type Proxy struct {
	out      io.Writer
	factory  informers.SharedInformerFactory
	slices   cache.Indexer
	services cache.Indexer
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu        sync.Mutex
	listeners map[string]*portListener // "ns/svc/portName" -> listener
	conns     map[net.Conn]struct{}    // open client connections
	stopped   bool
}

// portListener serves one Service port.
type portListener struct {
	ln       net.Listener
	svcKey   string // namespace/name
	portName string
}

const byService = "service"

// Start watches Services and EndpointSlices through c and serves their
// ClusterIPs once the informers have synced. It reports what it serves,
// and what it cannot, to out.
func Start(ctx context.Context, c kubernetes.Interface, out io.Writer) (*Proxy, error) {
	ctx, cancel := context.WithCancel(ctx)
	p := &Proxy{out: out, factory: informers.NewSharedInformerFactory(c, 0), cancel: cancel,
		listeners: map[string]*portListener{}, conns: map[net.Conn]struct{}{}}
	sliceInf := p.factory.Discovery().V1().EndpointSlices().Informer()
	if err := sliceInf.AddIndexers(cache.Indexers{byService: func(obj any) ([]string, error) {
		s := obj.(*discoveryv1.EndpointSlice)
		return []string{s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]}, nil
	}}); err != nil {
		cancel()
		return nil, err
	}
	p.slices = sliceInf.GetIndexer()
	svcInf := p.factory.Core().V1().Services().Informer()
	p.services = svcInf.GetIndexer()
	// Every event re-evaluates the Service it concerns.
	handler := func(key func(obj any) string) cache.ResourceEventHandlerFuncs {
		return cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { p.sync(key(obj)) },
			UpdateFunc: func(_, obj any) { p.sync(key(obj)) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				p.sync(key(obj))
			},
		}
	}
	for inf, key := range map[cache.SharedIndexInformer]func(any) string{
		svcInf: func(obj any) string { s := obj.(*corev1.Service); return s.Namespace + "/" + s.Name },
		sliceInf: func(obj any) string {
			s := obj.(*discoveryv1.EndpointSlice)
			return s.Namespace + "/" + s.Labels[discoveryv1.LabelServiceName]
		},
	} {
		if _, err := inf.AddEventHandler(handler(key)); err != nil {
			cancel()
			return nil, err
		}
	}
	p.factory.Start(ctx.Done())
	for typ, ok := range p.factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			p.Stop()
			return nil, fmt.Errorf("serviceproxy: %v informer did not sync", typ)
		}
	}
	return p, nil
}

// Stop closes every listener and waits for connections to end.
func (p *Proxy) Stop() {
	p.cancel()
	p.factory.Shutdown()
	p.mu.Lock()
	p.stopped = true
	for key, l := range p.listeners {
		l.ln.Close()
		delete(p.listeners, key)
	}
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// sync makes a Service's listeners match its state: one per TCP port
// that has a ClusterIP and at least one ready endpoint.
func (p *Proxy) sync(svcKey string) {
	want := map[string]string{} // listener key -> ClusterIP:port
	if obj, ok, _ := p.services.GetByKey(svcKey); ok {
		s := obj.(*corev1.Service)
		if ip := s.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
			for _, port := range s.Spec.Ports {
				if port.Protocol != "" && port.Protocol != corev1.ProtocolTCP {
					continue
				}
				if addrs, _ := p.ready(svcKey, port.Name); len(addrs) > 0 {
					want[svcKey+"/"+port.Name] = net.JoinHostPort(ip, strconv.Itoa(int(port.Port)))
				}
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	for key, l := range p.listeners {
		if l.svcKey == svcKey && want[key] != l.ln.Addr().String() {
			l.ln.Close()
			delete(p.listeners, key)
			fmt.Fprintf(p.out, "serviceproxy: %s refuses connections: no ready endpoint\n", key)
		}
	}
	for key, addr := range want {
		if _, ok := p.listeners[key]; ok {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintf(p.out, "serviceproxy: cannot serve %s: %v\n", key, err)
			continue
		}
		portName := strings.TrimPrefix(key, svcKey+"/")
		l := &portListener{ln: ln, svcKey: svcKey, portName: portName}
		p.listeners[key] = l
		p.wg.Go(func() { p.accept(l) })
		fmt.Fprintf(p.out, "serviceproxy: %s on %s\n", key, addr)
	}
}

func (p *Proxy) accept(l *portListener) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Go(func() { p.forward(conn, l) })
	}
}

// forward copies conn to a ready endpoint; with none, the connection is
// refused, as kube-proxy's REJECT rule does.
func (p *Proxy) forward(conn net.Conn, l *portListener) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		conn.Close()
		return
	}
	p.conns[conn] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, conn)
		p.mu.Unlock()
		conn.Close()
	}()
	addrs, err := p.ready(l.svcKey, l.portName)
	if err != nil || len(addrs) == 0 {
		return // the last endpoint went between accept and now
	}
	up, err := net.DialTimeout("tcp", addrs[rand.IntN(len(addrs))], 2*time.Second)
	if err != nil {
		fmt.Fprintf(p.out, "serviceproxy: %s/%s: %v\n", l.svcKey, l.portName, err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, conn)
	go pipe(conn, up)
	<-done
	conn.Close() // one side ended: end the other, as a TCP proxy does
	up.Close()
	<-done
}

// ready returns the addresses of a Service port's ready, not terminating
// endpoints.
func (p *Proxy) ready(svcKey, portName string) ([]string, error) {
	objs, err := p.slices.ByIndex(byService, svcKey)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, obj := range objs {
		s := obj.(*discoveryv1.EndpointSlice)
		var port int32
		for _, sp := range s.Ports {
			if sp.Name != nil && *sp.Name == portName && sp.Port != nil {
				port = *sp.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, e := range s.Endpoints {
			c := e.Conditions
			if len(e.Addresses) == 0 || (c.Ready != nil && !*c.Ready) || (c.Terminating != nil && *c.Terminating) {
				continue
			}
			addrs = append(addrs, net.JoinHostPort(e.Addresses[0], strconv.Itoa(int(port))))
		}
	}
	return addrs, nil
}
