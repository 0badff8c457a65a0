package main

import (
	"cmp"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// modeColors are the modes' line colours in the chart.
var modeColors = map[string]string{
	modeBare:         "#d62728",
	modeAutomemlimit: "#ff7f0e",
	modeOracle:       "#1f77b4",
	modeOomguard:     "#2ca02c",
	modeOomguardCost: "#9467bd",
}

var levelNames = []string{"normal", "elevated", "high", "critical"}

// The chart's geometry, in SVG user units.
const (
	svgWidth    = 1080
	plotLeft    = 80
	plotRight   = 840 // the legend sits to the right
	panelHeight = 200
	levelHeight = 110
	panelGap    = 60
)

// chart draws panels that share a time axis.
type chart struct {
	b    strings.Builder
	tMax float64 // seconds at the right edge
	top  float64 // top of the current panel
	h    float64 // height of the current panel
}

func (c *chart) x(t time.Duration) float64 {
	return plotLeft + math.Max(0, math.Min(1, t.Seconds()/c.tMax))*(plotRight-plotLeft)
}

// y maps v in [0, vMax] to the current panel.
func (c *chart) y(v, vMax float64) float64 {
	return c.top + c.h - math.Max(0, math.Min(1, v/vMax))*c.h
}

func (c *chart) printf(format string, args ...any) { fmt.Fprintf(&c.b, format, args...) }

func (c *chart) text(x, y float64, anchor, style, s string) {
	c.printf(`<text x="%.1f" y="%.1f" text-anchor="%s" %s>%s</text>`+"\n", x, y, anchor, style, html.EscapeString(s))
}

// panel starts a panel: frame, title, y ticks (labelled by tick), the
// measured phase shaded and the time axis.
func (c *chart) panel(top, h float64, title string, spikeFrom, spikeTo time.Duration, spikeLabel string, ticks []float64, vMax float64, tick func(float64) string) {
	c.top, c.h = top, h
	c.printf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eee"/>`+"\n", c.x(spikeFrom), top, c.x(spikeTo)-c.x(spikeFrom), h)
	c.text((c.x(spikeFrom)+c.x(spikeTo))/2, top+14, "middle", `fill="#666" font-size="11"`, spikeLabel)
	for _, v := range ticks {
		y := c.y(v, vMax)
		c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y, plotRight, y)
		c.text(plotLeft-6, y+4, "end", `font-size="11"`, tick(v))
	}
	for s := 0.0; s <= c.tMax; s += 5 {
		x := c.x(time.Duration(s * float64(time.Second)))
		c.printf(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`+"\n", x, top+h, x, top+h+4)
		c.text(x, top+h+16, "middle", `font-size="11"`, fmt.Sprintf("%.0f", s))
	}
	c.printf(`<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="none" stroke="#999"/>`+"\n", plotLeft, top, plotRight-plotLeft, h)
	c.text(plotLeft, top-8, "start", `font-size="13" font-weight="bold"`, title)
}

// polyline draws a line 1.8 wide unless extra sets stroke-width itself: an
// attribute given twice makes the whole file invalid XML.
func (c *chart) polyline(points []string, color, extra string) {
	if len(points) < 2 {
		return
	}
	if !strings.Contains(extra, "stroke-width") {
		extra = `stroke-width="1.8" ` + extra
	}
	c.printf(`<polyline fill="none" stroke="%s" %s points="%s"/>`+"\n", color, extra, strings.Join(points, " "))
}

// chartShape is the shape the chart shows: uniform if it ran, else the
// first; nil if none ran.
func (rep *report) chartShape() *shapeRun {
	for _, sr := range rep.Shapes {
		if sr.Shape.Name == shapeUniform {
			return sr
		}
	}
	if len(rep.Shapes) > 0 {
		return rep.Shapes[0]
	}
	return nil
}

// writeSVG draws one shape's runs (uniform's, if it ran) on one time axis:
// working set against the limit, the guard's level, and goodput per second
// against the offered rate.
func (rep *report) writeSVG(w io.Writer) error {
	c := &chart{tMax: 1}
	sr := rep.chartShape()
	if sr == nil {
		sr = &shapeRun{}
	}
	sched := sr.Schedule
	if len(sched) > 0 {
		c.tMax = math.Ceil(sched.Duration().Seconds()) + 1
	}
	spikeFrom, spikeTo, _ := sr.Shape.measuredWindow(sched)
	spikeLabel := sr.Shape.measured()
	if spikeLabel == phaseSpike {
		spikeLabel = fmt.Sprintf("spike %d×", spikeFactor)
	}
	height := 50 + panelHeight + panelGap + levelHeight + panelGap + panelHeight + 60
	c.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", svgWidth, height, svgWidth, height)
	c.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	limit := cmp.Or(sr.Shape.Limit, rep.Limit)
	title := fmt.Sprintf("%s: same load, same %s limit: base %.0f rps, peak %.0f rps", sr.Shape.Label, mib(limit), sr.BaseRate, sched.peakRate())
	if !rep.Enforced {
		title += " (no kernel enforcement)"
	}
	c.text(plotLeft, 22, "start", `font-size="15" font-weight="bold"`, title)

	// Legend.
	ly := 60.0
	for _, r := range sr.Runs {
		color := modeColors[r.Result.Mode]
		c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", plotRight+20, ly, plotRight+45, ly, color)
		label := r.Result.Mode
		if r.Result.OOMKilled {
			label += " (OOM-killed)"
		}
		c.text(plotRight+50, ly+4, "start", `font-size="12"`, label)
		ly += 20
	}
	c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black" stroke-dasharray="6 4"/>`+"\n", plotRight+20, ly, plotRight+45, ly)
	c.text(plotRight+50, ly+4, "start", `font-size="12"`, "limit / offered")

	// Usage against the limit.
	limitMiB := float64(limit) / (1 << 20)
	vMax := limitMiB * 1.1
	c.panel(50, panelHeight, "working set (MiB) vs limit", spikeFrom, spikeTo, spikeLabel, ticks(vMax), vMax, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	ly = c.y(limitMiB, vMax)
	c.printf(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black" stroke-dasharray="6 4"/>`+"\n", plotLeft, ly, plotRight, ly)
	c.text(plotRight-4, ly-4, "end", `font-size="11"`, "limit "+mib(limit))
	killed := 0 // kill labels stack downwards, so that close kills stay legible
	for _, r := range sr.Runs {
		var pts []string
		for _, s := range r.Samples {
			if s.Usage >= 0 && s.At >= 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(s.At), c.y(float64(s.Usage)/(1<<20), vMax)))
			}
		}
		color := modeColors[r.Result.Mode]
		c.polyline(pts, color, "")
		if r.DiedAt >= 0 {
			x := c.x(r.DiedAt)
			c.text(x, ly+16+14*float64(killed), "start", fmt.Sprintf(`fill="%s" font-size="12" font-weight="bold"`, color), "✕ "+r.Result.Mode+" killed")
			killed++
		}
	}

	// The guard's level.
	top := 50.0 + panelHeight + panelGap
	c.panel(top, levelHeight, "oomguard level", spikeFrom, spikeTo, spikeLabel, []float64{0, 1, 2, 3}, 3, func(v float64) string { return levelNames[int(v)] })
	for _, r := range sr.Runs {
		var pts []string
		for _, s := range r.Samples {
			if s.Level >= 0 && s.At >= 0 {
				y := c.y(float64(s.Level), 3)
				if len(pts) > 0 { // a step: hold the previous level until now
					prev := pts[len(pts)-1]
					pts = append(pts, fmt.Sprintf("%.1f,%s", c.x(s.At), prev[strings.IndexByte(prev, ',')+1:]))
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(s.At), y))
			}
		}
		c.polyline(pts, modeColors[r.Result.Mode], "")
	}

	// Goodput per second against the offered rate.
	top += levelHeight + panelGap
	peak := sched.peakRate()
	for _, r := range sr.Runs {
		for _, n := range okPerSecond(r.Hits, int(c.tMax)) {
			peak = max(peak, float64(n))
		}
	}
	peak = math.Max(1, peak*1.1)
	c.panel(top, panelHeight, "successful responses per second (by send time) vs offered rate", spikeFrom, spikeTo, spikeLabel, ticks(peak), peak, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	var offered []string
	for t := 0.0; t < c.tMax-1; t += 0.05 {
		d := time.Duration(t * float64(time.Second))
		offered = append(offered, fmt.Sprintf("%.1f,%.1f", c.x(d), c.y(sched.Rate(d), peak)))
	}
	c.polyline(offered, "black", `stroke-dasharray="6 4" stroke-width="1"`)
	for _, r := range sr.Runs {
		perSecond := okPerSecond(r.Hits, int(c.tMax))
		var pts []string
		for i, n := range perSecond[:max(0, len(perSecond)-1)] {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(time.Duration(i)*time.Second+time.Second/2), c.y(float64(n), peak)))
		}
		c.polyline(pts, modeColors[r.Result.Mode], "")
	}
	c.text((plotLeft+plotRight)/2, top+panelHeight+40, "middle", `font-size="12"`, "seconds since the load started")
	c.printf("</svg>\n")
	_, err := io.WriteString(w, c.b.String())
	return err
}

// okPerSecond counts successful responses by the second they were sent in,
// over n seconds.
func okPerSecond(hits []hit, n int) []int {
	perSecond := make([]int, max(n, 0))
	for _, h := range hits {
		if i := int(h.At.Seconds()); h.ok() && i >= 0 && i < len(perSecond) {
			perSecond[i]++
		}
	}
	return perSecond
}

// ticks returns three to six round values in [0, vMax].
func ticks(vMax float64) []float64 {
	if vMax <= 0 {
		return []float64{0}
	}
	step := math.Pow(10, math.Floor(math.Log10(vMax/4)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if vMax/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var ts []float64
	for v := 0.0; v <= vMax; v += step {
		ts = append(ts, v)
	}
	return ts
}
