package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

var palette = []color.Color{
	color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.NRGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// writePlots draws the propagation latency distribution (one curve per
// run: share of changes routed within x ms) and API writes per active
// agent against the number of gateways, into dir.
func writePlots(dir string, rs []*result) error {
	lat := plot.New()
	lat.Title.Text = "EndpointSlice change → routed by every gateway"
	lat.X.Label.Text = "latency (ms)"
	lat.Y.Label.Text = "share of changes routed"
	wr := plot.New()
	wr.Title.Text = "API writes by Flint while agents are invoked"
	wr.X.Label.Text = "gateways"
	wr.Y.Label.Text = "writes per active agent per 10 s"
	wr.Y.Min = 0
	for i, r := range rs {
		pts := make(plotter.XYs, len(r.Propagation))
		for j, d := range r.Propagation {
			pts[j] = plotter.XY{X: float64(d) / 1e6, Y: float64(j+1) / float64(len(r.Propagation))}
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		lat.Add(line)
		lat.Legend.Add(fmt.Sprintf("%d agents", r.Agents), line)

		var wpts plotter.XYs
		for _, p := range []struct {
			gws int
			w   *window
		}{{r.Gateways, &r.Active}, {r.MoreGateways, r.MoreActive}} {
			if p.w == nil || p.w.dur == 0 || r.ActiveAgents == 0 {
				continue
			}
			total := float64(sumOf(p.w.writes, "manager") + sumOf(p.w.writes, "gateway-"))
			wpts = append(wpts, plotter.XY{X: float64(p.gws), Y: total / p.w.dur.Seconds() * 10 / float64(r.ActiveAgents)})
		}
		if len(wpts) > 0 {
			lp, sc, err := plotter.NewLinePoints(wpts)
			if err != nil {
				return err
			}
			lp.Color, sc.Color = palette[i%len(palette)], palette[i%len(palette)]
			sc.Shape = draw.CircleGlyph{}
			wr.Add(lp, sc)
			wr.Legend.Add(fmt.Sprintf("%d agents", r.Agents), lp, sc)
		}
	}
	goal, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 1}, {X: 12, Y: 1}})
	if err != nil {
		return err
	}
	goal.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
	wr.Add(goal)
	wr.Legend.Add("goal: 1", goal)
	wr.X.Min, wr.X.Max = 0, 12
	lat.Legend.Left, lat.Legend.Top = false, false
	lat.Y.Min, lat.Y.Max = 0, 1
	wr.Legend.Top = true
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, p := range map[string]*plot.Plot{"scale-propagation.png": lat, "scale-writes.png": wr} {
		if err := p.Save(16*vg.Centimeter, 9*vg.Centimeter, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}
