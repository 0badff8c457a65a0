package statuspage

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/oomguard/oomguard/guard/internal/humanize"
	"github.com/oomguard/oomguard/guard/internal/level"
)

// The status page's charts are inline SVG written here, with no script
// and no external asset: the page must open on a pod reached through
// kubectl port-forward, and a charting library would cost the binary more
// than the guard itself.

const (
	chartW      = 960.0 // the viewBox's width; the page scales it
	chartLeft   = 64.0  // room for the y labels
	chartRight  = 150.0 // room for the reference lines' labels
	chartTop    = 8.0
	chartBottom = 22.0 // room for the time labels
	plotW       = chartW - chartLeft - chartRight
	labelGap    = 12.0 // the least vertical distance between two labels
	// minSpan is the narrowest time axis, so that the first seconds of a
	// run are not stretched across the page.
	minSpan = 30 * time.Second
	// gapAfter breaks a line where points are missing (a stopped process,
	// a suspended VM) rather than draw a straight line across.
	gapAfter = 5 * historyEvery
)

// The colours of the series, shared by the charts and their legends.
const (
	colWorkingSet = "#2563eb"
	colCommitted  = "#059669"
	colHeap       = "#9333ea"
	colLimit      = "#111827"
	colGoMemLimit = "#6b7280"
	colInFlight   = "#2563eb"
	colShed       = "#dc2626"
)

// levelColors are the levels' colours, by Level.
var levelColors = [...]string{"#16a34a", "#ca8a04", "#ea580c", "#dc2626"}

func levelColor(l level.Level) string {
	if l < level.Normal || l > level.Critical {
		return "#6b7280"
	}
	return levelColors[l]
}

// chart maps times and values of a history onto one SVG plot area.
type chart struct {
	b      *strings.Builder
	h      float64 // the plot area's height
	t0, t1 int64   // the time axis, unix nanoseconds
	yMax   float64
	clip   string // the id of the plot area's clip path
}

func newChart(b *strings.Builder, pts []Point, h float64, clip string) *chart {
	t1 := pts[len(pts)-1].T
	t0 := min(pts[0].T, t1-int64(minSpan))
	return &chart{b: b, h: h, t0: t0, t1: t1, clip: clip}
}

func (c *chart) x(t int64) float64 {
	return chartLeft + plotW*float64(t-c.t0)/float64(c.t1-c.t0)
}

func (c *chart) y(v float64) float64 {
	if c.yMax <= 0 {
		return chartTop + c.h
	}
	return chartTop + c.h*(1-v/c.yMax)
}

// open starts the SVG, with its grid and axes; the y axis is labelled in
// unit by format.
func (c *chart) open(label string, unit float64, format func(float64) string) {
	b := c.b
	height := chartTop + c.h + chartBottom
	b.WriteString(`<svg class="chart" viewBox="0 0 ` + num(chartW) + " " + num(height) + `" role="img" aria-label="` + label + `">` + "\n")
	b.WriteString(`<defs><clipPath id="` + c.clip + `"><rect x="` + num(chartLeft) + `" y="` + num(chartTop-1) +
		`" width="` + num(plotW) + `" height="` + num(c.h+2) + `"/></clipPath></defs>` + "\n")
	// The y grid.
	step := niceStep(c.yMax, unit)
	for k := 0.0; k*step <= c.yMax; k++ {
		v := k * step
		y := c.y(v)
		b.WriteString(`<line class="grid" x1="` + num(chartLeft) + `" x2="` + num(chartLeft+plotW) + `" y1="` + num(y) + `" y2="` + num(y) + `"/>`)
		b.WriteString(`<text x="` + num(chartLeft-6) + `" y="` + num(y+4) + `" text-anchor="end">` + format(v) + "</text>\n")
	}
	c.timeAxis(true)
}

// timeAxis draws the vertical grid at round times before the newest point,
// and labels it as time ago when labels is set.
func (c *chart) timeAxis(labels bool) {
	b := c.b
	step := timeStep(time.Duration(c.t1 - c.t0))
	bottom := chartTop + c.h
	for ago := time.Duration(0); c.t1-int64(ago) >= c.t0; ago += step {
		x := c.x(c.t1 - int64(ago))
		b.WriteString(`<line class="grid" x1="` + num(x) + `" x2="` + num(x) + `" y1="` + num(chartTop) + `" y2="` + num(bottom) + `"/>`)
		if labels {
			anchor := "middle"
			if ago == 0 {
				anchor = "end"
			}
			b.WriteString(`<text x="` + num(x) + `" y="` + num(bottom+15) + `" text-anchor="` + anchor + `">` + agoLabel(ago) + "</text>")
		}
		b.WriteByte('\n')
	}
	b.WriteString(`<line class="axis" x1="` + num(chartLeft) + `" x2="` + num(chartLeft+plotW) + `" y1="` + num(bottom) + `" y2="` + num(bottom) + `"/>` + "\n")
}

// line draws one value of the points as a path, broken where points are
// missing. A step line (a limit, a threshold) keeps only its corners.
func (c *chart) line(pts []Point, value func(*Point) float64, class, color, dash string, width float64, step bool) {
	var d []byte
	var prevT int64
	prevV := math.NaN() // NaN: no value, as for GOMEMLIMIT unset
	for i := range pts {
		p := &pts[i]
		v := value(p)
		if math.IsNaN(v) {
			prevV = v
			continue
		}
		x, y := c.x(p.T), c.y(v)
		switch {
		case math.IsNaN(prevV) || p.T-prevT > int64(gapAfter):
			d = appendXY(append(d, " M"...), x, y)
		case !step:
			d = appendXY(append(d, " L"...), x, y)
		case v != prevV:
			d = appendXY(append(d, " L"...), x, c.y(prevV))
			d = appendXY(append(d, " L"...), x, y)
		case i == len(pts)-1 || pts[i+1].T-p.T > int64(gapAfter):
			d = appendXY(append(d, " L"...), x, y)
		}
		prevT, prevV = p.T, v
	}
	c.b.WriteString(`<path class="` + class + `" clip-path="url(#` + c.clip + `)" fill="none" stroke="` + color + `" stroke-width="` + num(width) + `"`)
	if dash != "" {
		c.b.WriteString(` stroke-dasharray="` + dash + `"`)
	}
	c.b.WriteString(` d="` + strings.TrimSpace(string(d)) + `"/>` + "\n")
}

// rightLabel is the label of a line in the chart's right margin.
type rightLabel struct {
	y           float64
	text, color string
}

// labels writes the right-margin labels, moved apart where lines are too
// close for their labels to be read.
func (c *chart) labels(ls []rightLabel) {
	// An insertion sort: a handful of labels, and slices' generic sorts
	// would add kilobytes to the binary.
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && ls[j].y < ls[j-1].y; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	for i := 1; i < len(ls); i++ {
		ls[i].y = max(ls[i].y, ls[i-1].y+labelGap)
	}
	for _, l := range ls {
		c.b.WriteString(`<text x="` + num(chartLeft+plotW+6) + `" y="` + num(l.y+4) + `" fill="` + l.color + `">` + l.text + "</text>\n")
	}
}

// writeMemoryChart draws the working set, committed memory and the Go heap
// against GOMEMLIMIT, the limit and the thresholds. A limit far above the
// usage (a machine's memory) would flatten every line at the bottom: a
// reference line more than three times the highest usage is left out and
// named in the caption instead. It returns that caption.
func writeMemoryChart(b *strings.Builder, pts []Point, th Thresholds) (offChart string) {
	c := newChart(b, pts, 250, "clip-mem")
	var top float64
	for i := range pts {
		top = max(top, float64(pts[i].Usage), float64(pts[i].Committed), float64(pts[i].Heap))
	}
	type ref struct {
		name, color, dash string
		width             float64
		value             func(*Point) float64
	}
	limit := func(f float64) func(*Point) float64 {
		return func(p *Point) float64 { return f * float64(p.Limit) }
	}
	refs := []ref{
		{"limit", colLimit, "", 1.5, limit(1)},
		{"critical", levelColor(level.Critical), "3 3", 1, limit(th.Critical)},
		{"high", levelColor(level.High), "3 3", 1, limit(th.High)},
		{"elevated", levelColor(level.Elevated), "3 3", 1, limit(th.Elevated)},
		{"GOMEMLIMIT", colGoMemLimit, "8 4", 1.5, func(p *Point) float64 {
			if p.GoMemLimit >= math.MaxInt64/2 { // unset: no line
				return math.NaN()
			}
			return float64(p.GoMemLimit)
		}},
	}
	var shown []ref
	var off []string
	c.yMax = top
	for _, r := range refs {
		var hi float64
		for i := range pts {
			if v := r.value(&pts[i]); !math.IsNaN(v) {
				hi = max(hi, v)
			}
		}
		switch {
		case hi == 0:
		case top > 0 && hi > 3*top:
			off = append(off, r.name+" "+humanize.Bytes(int64(r.value(&pts[len(pts)-1]))))
		default:
			shown = append(shown, r)
			c.yMax = max(c.yMax, hi)
		}
	}
	c.yMax = max(c.yMax*1.05, 1<<20)
	unit := humanize.ByteUnit(c.yMax)
	c.open("memory over time", unit, func(v float64) string { return humanize.BytesIn(v, unit) })
	newest := &pts[len(pts)-1]
	var ls []rightLabel
	for _, r := range shown {
		c.line(pts, r.value, "ref", r.color, r.dash, r.width, true)
		if v := r.value(newest); !math.IsNaN(v) {
			ls = append(ls, rightLabel{c.y(v), r.name + " " + humanize.Bytes(int64(v)), r.color})
		}
	}
	c.line(pts, func(p *Point) float64 { return float64(p.Heap) }, "series heap", colHeap, "", 1.5, false)
	c.line(pts, func(p *Point) float64 { return float64(p.Committed) }, "series committed", colCommitted, "", 1.5, false)
	c.line(pts, func(p *Point) float64 { return float64(p.Usage) }, "series ws", colWorkingSet, "", 2.5, false)
	c.labels(ls)
	b.WriteString("</svg>\n")
	if len(off) > 0 {
		return "Off the chart, far above the usage: " + strings.Join(off, ", ") + "."
	}
	return ""
}

// writeLevelStrip draws the level over time as a band of colour, one
// rectangle per run of a level.
func writeLevelStrip(b *strings.Builder, pts []Point) {
	c := newChart(b, pts, 16, "clip-level")
	b.WriteString(`<svg class="chart strip" viewBox="0 0 ` + num(chartW) + " " + num(chartTop+c.h+4) + `" role="img" aria-label="level over time">` + "\n")
	b.WriteString(`<text x="` + num(chartLeft-6) + `" y="` + num(chartTop+12) + `" text-anchor="end">level</text>` + "\n")
	for i := 0; i < len(pts); {
		j := i + 1
		for j < len(pts) && pts[j].Level == pts[i].Level && pts[j].T-pts[j-1].T <= int64(gapAfter) {
			j++
		}
		x0 := c.x(pts[i].T)
		x1 := c.x(pts[j-1].T)
		if j < len(pts) && pts[j].T-pts[j-1].T <= int64(gapAfter) {
			x1 = c.x(pts[j].T) // up to the next run, with no seam
		}
		b.WriteString(`<rect class="level-` + pts[i].Level.String() + `" x="` + num(x0) + `" y="` + num(chartTop) + `" width="` + num(max(x1-x0, 1)) +
			`" height="` + num(c.h) + `" fill="` + levelColor(pts[i].Level) + `"><title>` + pts[i].Level.String() + "</title></rect>\n")
		i = j
	}
	b.WriteString("</svg>\n")
}

// writeRequestsChart draws the requests in flight and shed per second.
func writeRequestsChart(b *strings.Builder, pts []Point) {
	c := newChart(b, pts, 110, "clip-req")
	c.yMax = 1
	for i := range pts {
		c.yMax = max(c.yMax, float64(pts[i].InFlight), float64(pts[i].shedRate))
	}
	c.yMax *= 1.1
	c.open("requests over time", 1, count)
	c.line(pts, func(p *Point) float64 { return float64(p.shedRate) }, "series shed", colShed, "", 2, false)
	c.line(pts, func(p *Point) float64 { return float64(p.InFlight) }, "series inflight", colInFlight, "", 2, false)
	b.WriteString("</svg>\n")
}

// niceStep is the grid step for an axis from 0 to hi labelled in unit
// (1024 to the power of k for bytes): 1, 2, 2.5 or 5 times a power of ten
// units, in at most six steps.
func niceStep(hi, unit float64) float64 {
	if hi <= 0 {
		return unit
	}
	mag := math.Pow(10, math.Floor(math.Log10(hi/unit/6)))
	for _, m := range [...]float64{1, 2, 2.5, 5, 10} {
		if hi/unit/(m*mag) <= 6 {
			return m * mag * unit
		}
	}
	return 10 * mag * unit
}

// timeStep is the time grid's step for a span: at most six steps.
func timeStep(span time.Duration) time.Duration {
	for _, s := range [...]time.Duration{10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute} {
		if span/s <= 6 {
			return s
		}
	}
	return 10 * time.Minute
}

// agoLabel labels a time axis tick.
func agoLabel(d time.Duration) string {
	switch {
	case d == 0:
		return "now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s ago"
	case d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " min ago"
	}
	return strconv.FormatFloat(d.Minutes(), 'f', 1, 64) + " min ago"
}

// count formats a count of requests on an axis, to two decimals: the steps
// are round numbers of at most two decimals (see niceStep), but their
// multiples in floating point are not always (3 × 0.2 is 0.6000000000000001).
func count(v float64) string { return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) }

// num formats a coordinate, to a tenth of a pixel.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

func appendXY(d []byte, x, y float64) []byte {
	d = strconv.AppendFloat(d, x, 'f', 1, 64)
	d = append(d, ',')
	return strconv.AppendFloat(d, y, 'f', 1, 64)
}
