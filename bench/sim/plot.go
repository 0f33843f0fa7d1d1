package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/flint-dev/flint/internal/autoscaler/sim"
)

// Colours are NRGBA: color.RGBA is premultiplied, so a translucent RGBA
// with full-strength channels is a different colour.
var (
	colorOffered  = color.NRGBA{R: 0x44, G: 0x44, B: 0x44, A: 0xff}
	colorCapacity = color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorRejected = color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colorReady    = color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colorDesired  = color.NRGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	colorPanic    = color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0x28}
	colorMark     = color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0xff}
)

// legendHeadroom leaves room above the data for the legend.
const legendHeadroom = 1.45

// writePlot draws two aligned panels over time: load (offered concurrency,
// ready capacity, refused load) and replicas (desired, ready, panic mode).
// cmp, when not nil, adds the admitted-only replay's capacity, dashed.
func writePlot(path string, res *sim.Result, cmp *sim.Result) error {
	load, err := loadPanel(res, cmp)
	if err != nil {
		return err
	}
	replicas, err := replicaPanel(res)
	if err != nil {
		return err
	}
	img := vgimg.New(10*vg.Inch, 6.5*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 3 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	plots := [][]*plot.Plot{{load}, {replicas}}
	canvases := plot.Align(plots, tiles, dc)
	load.Draw(canvases[0][0])
	replicas.Draw(canvases[1][0])

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create plot: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write plot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close plot: %w", err)
	}
	return nil
}

func loadPanel(res, cmp *sim.Result) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s — %s", res.Trace.Name, res.Trace.Description)
	p.Y.Label.Text = "concurrent requests"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	service := res.Trace.ServiceTime.Seconds()

	series := []struct {
		name  string
		pick  func(sim.Point) float64
		color color.Color
		fill  bool
	}{
		{"refused (req/s × service time)", func(pt sim.Point) float64 { return pt.Rejected * service }, colorRejected, true},
		{"offered (rate × service time)", func(pt sim.Point) float64 { return pt.Offered }, colorOffered, false},
		{"ready capacity (ready × concurrency)", func(pt sim.Point) float64 { return pt.Capacity }, colorCapacity, false},
	}
	for _, s := range series {
		l, err := plotter.NewLine(xys(res.Points, s.pick))
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		l.Color, l.Width = s.color, vg.Points(1.5)
		if s.fill {
			l.FillColor, l.Width = s.color, 0
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	if cmp != nil {
		l, err := plotter.NewLine(xys(cmp.Points, func(pt sim.Point) float64 { return pt.Capacity }))
		if err != nil {
			return nil, fmt.Errorf("plot comparison: %w", err)
		}
		l.Color, l.Width, l.Dashes = colorCapacity, vg.Points(1), []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		p.Legend.Add("ready capacity, admitted-only scaler", l)
	}
	p.Y.Min, p.Y.Max = 0, p.Y.Max*legendHeadroom
	addMarks(p, res)
	return p, nil
}

func replicaPanel(res *sim.Result) (*plot.Plot, error) {
	p := plot.New()
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "replicas"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	maxR := float64(res.Trace.MaxReplicas)
	panicBand, err := plotter.NewLine(xys(res.Points, func(pt sim.Point) float64 {
		if pt.Decision.Panic {
			return maxR
		}
		return 0
	}))
	if err != nil {
		return nil, fmt.Errorf("plot panic: %w", err)
	}
	panicBand.StepStyle, panicBand.FillColor, panicBand.Width = plotter.PreStep, colorPanic, 0
	p.Add(panicBand)
	p.Legend.Add("panic mode", panicBand)

	for _, s := range []struct {
		name  string
		pick  func(sim.Point) float64
		color color.Color
	}{
		{"desired", func(pt sim.Point) float64 { return float64(pt.Decision.Desired) }, colorDesired},
		{"ready", func(pt sim.Point) float64 { return float64(pt.Ready) }, colorReady},
	} {
		l, err := plotter.NewLine(xys(res.Points, s.pick))
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.name, err)
		}
		l.StepStyle, l.Color, l.Width = plotter.PreStep, s.color, vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Y.Min, p.Y.Max = 0, maxR*legendHeadroom
	addMarks(p, res)
	return p, nil
}

// addMarks draws the trace's marks as vertical lines.
func addMarks(p *plot.Plot, res *sim.Result) {
	for _, m := range res.Trace.Marks {
		x := m.At.Seconds()
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0}, {X: x, Y: p.Y.Max}})
		if err != nil {
			continue
		}
		l.Color, l.Dashes = colorMark, []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
	}
}

func xys(points []sim.Point, pick func(sim.Point) float64) plotter.XYs {
	out := make(plotter.XYs, len(points))
	for i, pt := range points {
		out[i] = plotter.XY{X: pt.T.Seconds(), Y: pick(pt)}
	}
	return out
}
