package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Trace is a load pattern plus the agent, fleet and gateway it runs against.
// See ParseTrace for the text format.
type Trace struct {
	Name        string
	Description string
	Duration    time.Duration

	// The agent.
	Concurrency      int32
	Target           int32 // 0: Flint's default (70% of concurrency)
	MinReplicas      int32
	MaxReplicas      int32
	StableWindow     time.Duration
	ScaleToZeroAfter time.Duration

	// The fleet and the gateway.
	Startup       time.Duration // from asked-for to ready
	ServiceTime   time.Duration // mean request duration (exponential)
	SidecarQueue  int
	HoldQueue     int
	HoldTimeout   time.Duration
	ScrapeFailure float64 // probability that one replica's scrape fails
	Tick          time.Duration
	Seed          uint64

	Load  []Shape
	Marks []Mark
}

// Shape is one term of the load; the offered rate at a time is the sum of all
// shapes active then.
type Shape struct {
	Kind     string // rate, ramp, sine, sawtooth, pulse
	From, To time.Duration
	A, B     float64       // rate: A; ramp: A→B; sine: mean A, amplitude B; sawtooth: A→B; pulse: base A, height B
	Period   time.Duration // sine, sawtooth, pulse
	Width    time.Duration // pulse
}

// Mark names a moment of the trace (e.g. the start of a step); the
// simulator measures how long capacity took to catch up with load after it.
type Mark struct {
	At    time.Duration
	Label string
}

// DefaultTrace returns the settings a trace file starts from.
func DefaultTrace() Trace {
	return Trace{
		Duration:         5 * time.Minute,
		Concurrency:      10,
		MaxReplicas:      50,
		StableWindow:     60 * time.Second,
		ScaleToZeroAfter: 30 * time.Second,
		Startup:          3 * time.Second,
		ServiceTime:      time.Second,
		HoldQueue:        200,
		HoldTimeout:      10 * time.Second,
		Tick:             2 * time.Second,
		Seed:             1,
	}
}

// Rate is the offered load at t in requests per second.
func (t *Trace) Rate(at time.Duration) float64 {
	var r float64
	for _, s := range t.Load {
		r += s.rate(at)
	}
	return max(r, 0)
}

func (s Shape) rate(t time.Duration) float64 {
	if t < s.From || t >= s.To {
		return 0
	}
	phase := func() float64 { return float64((t-s.From)%s.Period) / float64(s.Period) }
	switch s.Kind {
	case "rate":
		return s.A
	case "ramp":
		return s.A + (s.B-s.A)*float64(t-s.From)/float64(s.To-s.From)
	case "sine":
		return s.A + s.B*math.Sin(2*math.Pi*phase())
	case "sawtooth":
		return s.A + (s.B-s.A)*phase()
	case "pulse":
		if (t-s.From)%s.Period < s.Width {
			return s.B
		}
		return s.A
	}
	return 0
}

// ParseTrace reads a trace. The format is line based: '#' starts a comment,
// each line is a keyword and its fields, durations are Go durations (90s,
// 2m). Settings (every one optional, defaults from DefaultTrace):
//
//	name NAME
//	description TEXT...
//	duration D
//	concurrency N | target N | min-replicas N | max-replicas N
//	stable-window D | scale-to-zero-after D
//	startup D | service-time D | sidecar-queue N | hold-queue N | hold-timeout D
//	scrape-failure P | tick D | seed N
//
// Load, in requests per second; all shapes add up:
//
//	rate FROM TO RPS                     constant
//	ramp FROM TO RPS1 RPS2               linear from RPS1 to RPS2
//	sine FROM TO MEAN AMPLITUDE PERIOD   (negative values count as 0)
//	sawtooth FROM TO LOW HIGH PERIOD     climbs LOW→HIGH each period, drops back
//	pulse FROM TO BASE HEIGHT WIDTH PERIOD  HEIGHT for WIDTH every PERIOD, else BASE
//	mark AT LABEL                        measure time to capacity after AT
func ParseTrace(name string, r io.Reader) (*Trace, error) {
	t := DefaultTrace()
	t.Name = name
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if err := t.parseLine(fields); err != nil {
			return nil, fmt.Errorf("trace %s:%d: %s: %w", name, line, fields[0], err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read trace %s: %w", name, err)
	}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	return &t, nil
}

func (t *Trace) parseLine(f []string) error {
	p := fieldParser{f: f}
	switch k := f[0]; k {
	case "name":
		t.Name = p.word(1)
	case "description":
		t.Description = strings.Join(f[1:], " ")
		return nil
	case "duration":
		t.Duration = p.dur(1)
	case "concurrency", "target", "min-replicas", "max-replicas":
		n := int32(p.int(1))
		*map[string]*int32{"concurrency": &t.Concurrency, "target": &t.Target,
			"min-replicas": &t.MinReplicas, "max-replicas": &t.MaxReplicas}[k] = n
	case "stable-window", "scale-to-zero-after", "startup", "service-time", "hold-timeout", "tick":
		d := p.dur(1)
		*map[string]*time.Duration{"stable-window": &t.StableWindow, "scale-to-zero-after": &t.ScaleToZeroAfter,
			"startup": &t.Startup, "service-time": &t.ServiceTime, "hold-timeout": &t.HoldTimeout, "tick": &t.Tick}[k] = d
	case "sidecar-queue":
		t.SidecarQueue = p.int(1)
	case "hold-queue":
		t.HoldQueue = p.int(1)
	case "scrape-failure":
		t.ScrapeFailure = p.float(1)
	case "seed":
		t.Seed = uint64(p.int(1))
	case "rate":
		t.Load = append(t.Load, Shape{Kind: k, From: p.dur(1), To: p.dur(2), A: p.float(3)})
	case "ramp":
		t.Load = append(t.Load, Shape{Kind: k, From: p.dur(1), To: p.dur(2), A: p.float(3), B: p.float(4)})
	case "sine", "sawtooth":
		t.Load = append(t.Load, Shape{Kind: k, From: p.dur(1), To: p.dur(2), A: p.float(3), B: p.float(4), Period: p.dur(5)})
	case "pulse":
		t.Load = append(t.Load, Shape{Kind: k, From: p.dur(1), To: p.dur(2), A: p.float(3), B: p.float(4), Width: p.dur(5), Period: p.dur(6)})
	case "mark":
		t.Marks = append(t.Marks, Mark{At: p.dur(1), Label: p.word(2)})
	default:
		return errors.New("unknown keyword")
	}
	return p.done()
}

// Validate reports settings the simulator cannot run.
func (t *Trace) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(t.Duration > 0, "duration must be positive")
	check(t.Concurrency > 0, "concurrency (%d) must be positive: the simulated sidecar needs a cap", t.Concurrency)
	check(t.MaxReplicas >= max(t.MinReplicas, 1), "max-replicas (%d) must be at least 1 and min-replicas (%d)", t.MaxReplicas, t.MinReplicas)
	check(t.Target >= 0 && t.MinReplicas >= 0, "target and min-replicas must not be negative")
	check(t.StableWindow > 0 && t.ScaleToZeroAfter > 0, "stable-window and scale-to-zero-after must be positive")
	check(t.Startup >= 0 && t.ServiceTime > 0 && t.Tick > 0, "startup must not be negative; service-time and tick must be positive")
	check(t.SidecarQueue >= 0 && t.HoldQueue >= 0 && t.HoldTimeout > 0, "queues must not be negative and hold-timeout must be positive")
	check(t.ScrapeFailure >= 0 && t.ScrapeFailure < 1, "scrape-failure (%v) must be in [0, 1)", t.ScrapeFailure)
	for _, s := range t.Load {
		check(s.To > s.From, "%s from %s to %s: the end must be after the start", s.Kind, s.From, s.To)
		check(s.Kind != "sine" && s.Kind != "sawtooth" && s.Kind != "pulse" || s.Period > 0, "%s needs a positive period", s.Kind)
	}
	return errors.Join(errs...)
}

// fieldParser reads positional fields, remembering the first error.
type fieldParser struct {
	f    []string
	used int
	err  error
}

func (p *fieldParser) field(i int) string {
	p.used = max(p.used, i+1)
	if i >= len(p.f) {
		if p.err == nil {
			p.err = fmt.Errorf("missing field %d", i)
		}
		return ""
	}
	return p.f[i]
}

func (p *fieldParser) word(i int) string { return p.field(i) }

func (p *fieldParser) dur(i int) time.Duration {
	s := p.field(i)
	d, err := time.ParseDuration(s)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("field %d: %w", i, err)
	}
	return d
}

func (p *fieldParser) float(i int) float64 {
	s := p.field(i)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("field %d: %w", i, err)
	}
	return v
}

func (p *fieldParser) int(i int) int {
	s := p.field(i)
	v, err := strconv.Atoi(s)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("field %d: %w", i, err)
	}
	return v
}

func (p *fieldParser) done() error {
	if p.err == nil && len(p.f) > p.used {
		return fmt.Errorf("unexpected field %q", p.f[p.used])
	}
	return p.err
}
