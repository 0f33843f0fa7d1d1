package proxy

import (
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := func(mut func(*Config)) Config {
		c := DefaultConfig()
		mut(&c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none = valid
	}{
		{"defaults", DefaultConfig(), nil},
		{"zero value", Config{}, nil},
		{"random ports", ok(func(c *Config) { c.ServingAddr, c.AdminAddr = "127.0.0.1:0", "127.0.0.1:0" }), nil},
		{"negative concurrency", ok(func(c *Config) { c.Concurrency = -1 }), []string{"-concurrency=-1"}},
		{"queue without cap", ok(func(c *Config) { c.QueueDepth = 3 }), []string{"-queue-depth=3 needs -concurrency > 0"}},
		{"same ports", ok(func(c *Config) { c.AdminAddr = c.ServingAddr }), []string{"-admin-addr", "must differ"}},
		{"wildcard clash", ok(func(c *Config) { c.ServingAddr, c.AdminAddr = ":8012", "127.0.0.1:8012" }), []string{"must differ"}},
		{"bad address", ok(func(c *Config) { c.UpstreamAddr = "localhost" }), []string{`-upstream="localhost" is not a host:port`}},
		{"negative duration", ok(func(c *Config) { c.DrainDelay = -time.Second }), []string{"-drain-delay=-1s must not be negative"}},
		{"probe path", ok(func(c *Config) { c.ProbePath = "healthz" }), []string{"-probe-path", "must start with /"}},
		{"drain fits grace", ok(func(c *Config) { c.TerminationGracePeriod = 40 * time.Second }), nil},
		{"drain exceeds grace", ok(func(c *Config) { c.TerminationGracePeriod = 30 * time.Second }),
			[]string{"-drain-delay (5s) + -drain-timeout (30s)", "termination-grace-period (30s)", "lower -drain-timeout"}},
		{"all at once", ok(func(c *Config) { c.Concurrency, c.QueueDepth = -1, -1 }), []string{"-concurrency=-1", "-queue-depth=-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted an invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, nerr := New(tc.cfg, nil); nerr == nil {
				t.Error("New accepted a config Validate refuses")
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	var c Config
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := fs.Parse([]string{"-concurrency=10", "-queue-depth=20", "-drain-delay=2s", "-upstream=127.0.0.1:9000", "-probe-path=/ready"}); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Concurrency, want.QueueDepth, want.DrainDelay, want.UpstreamAddr, want.ProbePath = 10, 20, 2*time.Second, "127.0.0.1:9000", "/ready"
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("parsed %+v\nwant   %+v", c, want)
	}
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Usage) < 20 {
			t.Errorf("flag -%s has no real help text", f.Name)
		}
	})
	for _, name := range []string{"serving-addr", "admin-addr", "upstream", "concurrency", "queue-depth", "queue-timeout",
		"retry-after", "request-timeout", "probe-path", "probe-interval", "drain-delay", "drain-timeout", "termination-grace-period"} {
		if fs.Lookup(name) == nil {
			t.Errorf("flag -%s missing", name)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 5 * time.Second: 5} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}
