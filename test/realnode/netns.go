package realnode

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsDialer opens connections from inside the node's network namespace while
// the test process itself stays on the host (where it can compare the host
// before and after). A socket belongs to the namespace of the thread that
// creates it, so Dial switches one locked OS thread into the namespace just
// for the socket(2) call; the connection keeps working after the switch back.
type nsDialer struct {
	netns string // /proc/HOLDER/ns/net
}

// DialContext is a net.Dialer.DialContext for the node's network.
func (d nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := d.do(func() error {
		var err error
		conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// do runs f on a thread inside the namespace.
func (d nsDialer) do(f func() error) error {
	target, err := os.Open(d.netns)
	if err != nil {
		return fmt.Errorf("open node network namespace: %w", err)
	}
	defer target.Close()
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter node network namespace: %w", err)
	}
	ferr := f()
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: it dies with this goroutine instead of
		// running other goroutines in the wrong namespace.
		return fmt.Errorf("leave node network namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}
