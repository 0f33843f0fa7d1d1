package nodeagent

import (
	"regexp"
	"strings"
)

// Pod network emulation.
//
// In Kubernetes every pod has a network namespace of its own: 127.0.0.1
// and localhost reach the pod's own containers, and a server listening on
// ":8012" or 0.0.0.0 listens on the pod's own IP. Flint depends on both:
// the sidecar listens on :8012/:8022 and forwards to the agent at
// 127.0.0.1:PORT. Here every pod shares the host's network namespace, so
// two replicas would collide on their ports and a sidecar would reach
// whichever agent bound 127.0.0.1 first.
//
// Instead each pod gets a local address of its own (Linux routes all of
// 127.0.0.0/8 to lo with no configuration; in a test/cluster/podnet
// namespace all of 10.244.0.0/16 is local too, and EndpointSlices accept
// it) and the agent rewrites the pod-local addresses in the configuration
// it passes to the processes, so that they bind and dial the pod IP:
//
//   - an argument or env value that is exactly ":PORT" becomes "PODIP:PORT"
//     (two-word flags: `-addr :8080`);
//   - an argument "-flag=:PORT" or "--flag=:PORT" becomes "-flag=PODIP:PORT";
//   - anywhere in an argument or env value, the host tokens "127.0.0.1",
//     "localhost", "0.0.0.0", "[::1]" and "[::]" become PODIP, e.g.
//     "-upstream=127.0.0.1:8080", "http://localhost:9000/x", "HOST=0.0.0.0".
//     A token only matches whole: "127.0.0.10" and "mylocalhost" are left
//     alone.
//
// Only command words after the executable, args and the pod's env values
// are rewritten, after $(VAR) expansion; nothing else is. HOST is set to
// the pod IP unless the pod sets it (Flint's echo example listens on
// $HOST:$PORT, default 127.0.0.1). Probes and HTTP hooks connect to the pod
// IP, as the kubelet does. What this cannot reach: addresses compiled into
// a program or read from files, and wildcard listeners that a program opens
// by default without being told an address.

var (
	bareListenAddr = regexp.MustCompile(`^:[0-9]{1,5}$`)
	flagListenAddr = regexp.MustCompile(`^(--?[A-Za-z0-9][A-Za-z0-9_.-]*=):([0-9]{1,5})$`)
)

// podLocalHosts are the host names and addresses that mean "this pod".
var podLocalHosts = []string{"127.0.0.1", "localhost", "0.0.0.0", "[::1]", "[::]"}

// rewriteAddrs maps the pod-local addresses in s to podIP (see above).
func rewriteAddrs(s, podIP string) string {
	if bareListenAddr.MatchString(s) {
		return podIP + s
	}
	if m := flagListenAddr.FindStringSubmatch(s); m != nil {
		return m[1] + podIP + ":" + m[2]
	}
	for _, host := range podLocalHosts {
		s = replaceToken(s, host, podIP)
	}
	return s
}

// replaceToken replaces the occurrences of tok in s that are not part of a
// longer name or address.
func replaceToken(s, tok, repl string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, tok)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(tok)
		whole := (i == 0 || !isNameByte(s[i-1])) && (end == len(s) || !isNameByte(s[end]))
		// Brackets delimit themselves: "[::]" in "x[::]:1" is still whole.
		if strings.HasPrefix(tok, "[") {
			whole = true
		}
		b.WriteString(s[:i])
		if whole {
			b.WriteString(repl)
		} else {
			b.WriteString(tok)
		}
		s = s[end:]
	}
}

// isNameByte reports whether c can continue a host name or IPv4 address.
func isNameByte(c byte) bool {
	return c == '.' || c == '-' || c == '_' ||
		'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
