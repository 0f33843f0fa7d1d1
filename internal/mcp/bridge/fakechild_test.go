package bridge

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The fake stdio server is this test binary run again with FAKE_CHILD_LOG
// set. It is a go-sdk StdioTransport server that logs, to that file, what
// happens to it and when, so tests can check the order and timing of its
// shutdown:
//
//	<unix nanos> <pid> start | stdin-eof | sigterm | exit | begin <id> | end <id>
//
// FAKE_CHILD_ORPHAN makes it leave an orphaned process behind at start.
// FAKE_CHILD_IGNORE_EOF keeps it running after stdin closes, and
// FAKE_CHILD_IGNORE_TERM makes it ignore SIGTERM, like badly behaved servers.
func TestMain(m *testing.M) {
	if path := os.Getenv("FAKE_CHILD_LOG"); path != "" {
		os.Exit(fakeChild(path))
	}
	os.Exit(m.Run())
}

func fakeChild(path string) int {
	logf := func(event string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return
		}
		defer f.Close()
		fmt.Fprintf(f, "%d %d %s\n", time.Now().UnixNano(), os.Getpid(), event)
	}
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	go func() {
		for range terms {
			logf("sigterm")
			if os.Getenv("FAKE_CHILD_IGNORE_TERM") == "" {
				logf("exit")
				os.Exit(0)
			}
		}
	}()
	logf("start")
	if os.Getenv("FAKE_CHILD_ORPHAN") != "" {
		// Leave an orphan behind, as a shell wrapper's background job does:
		// sh exits at once and its sleep is reparented to the nearest
		// subreaper (the bridge, as PID 1).
		_ = exec.Command("/bin/sh", "-c", "sleep 0.2 &").Run()
		logf("orphaned")
	}
	fmt.Fprintln(os.Stderr, "fake child", os.Getpid(), "up") // exercises the bridge's stderr relay

	s := mcp.NewServer(&mcp.Implementation{Name: "fake", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "whoami"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, map[string]int, error) {
		return nil, map[string]int{"pid": os.Getpid()}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "slow"}, func(ctx context.Context, req *mcp.CallToolRequest, in struct {
		ID int `json:"id"`
		Ms int `json:"ms"`
	}) (*mcp.CallToolResult, map[string]int, error) {
		logf("begin " + strconv.Itoa(in.ID))
		if tok := req.Params.GetProgressToken(); tok != nil {
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1})
		}
		time.Sleep(time.Duration(in.Ms) * time.Millisecond) // a call that ignores cancellation, the worst case
		logf("end " + strconv.Itoa(in.ID))
		return nil, map[string]int{"id": in.ID}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "crash"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		logf("exit")
		os.Exit(3)
		return nil, nil, nil
	})
	_ = s.Run(context.Background(), &mcp.StdioTransport{})
	logf("stdin-eof")
	if os.Getenv("FAKE_CHILD_IGNORE_EOF") != "" {
		select {} // until SIGTERM, or SIGKILL
	}
	logf("exit")
	return 0
}

// childEvent is one line of a fake child's log.
type childEvent struct {
	at    time.Time
	pid   int
	event string
}

func readChildLog(t *testing.T, path string) []childEvent {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []childEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 3)
		ns, _ := strconv.ParseInt(parts[0], 10, 64)
		pid, _ := strconv.Atoi(parts[1])
		out = append(out, childEvent{at: time.Unix(0, ns), pid: pid, event: parts[2]})
	}
	return out
}

// eventsOf returns when each event of pid happened (the first time).
func eventsOf(log []childEvent, pid int) map[string]time.Time {
	m := map[string]time.Time{}
	for _, e := range log {
		if _, seen := m[e.event]; e.pid == pid && !seen {
			m[e.event] = e.at
		}
	}
	return m
}
