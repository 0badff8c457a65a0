package guard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oomguard/oomguard/internal/admission"
	"github.com/oomguard/oomguard/internal/latency"
)

func near(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want))
}

// TestLoadMeter drives the meter through known readings: the first gives
// memory alone; one loadTau later a step has come 1-1/e of its way; a long
// steady stretch reaches the step's values; the time bound wins when it is
// the tighter; a base past the target counts the work in units.
func TestLoadMeter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := loadReading{now: t0, admitted: 500, refused: 7, usage: 600, limit: 1000, cost: 10 << 20, target: 900 << 20, base: 100 << 20}
	var m loadMeter
	if l := m.next(r); l != (Load{MemoryUtilization: 0.6}) {
		t.Fatalf("first reading: %+v, want memory 0.6 alone", l)
	}

	// From there, 100 admitted and 10 refused a second, 20 units of work
	// in flight holding 200 MiB of the 800 MiB room, for one loadTau.
	r.now, r.admitted, r.refused, r.inFlight = t0.Add(loadTau), 600, 17, 20
	l := m.next(r)
	step := 1 - 1/math.E
	if !near(l.Admitted, 100*step) || !near(l.Refused, 10*step) || !near(l.Utilization, 0.25*step) {
		t.Errorf("one loadTau into the step: %+v, want rates 100 and 10 and utilization 0.25, times %.4f", l, step)
	}
	for i := range 2000 { // 20 loadTau in steps of a hundredth
		r.now = r.now.Add(loadTau / 100)
		r.admitted, r.refused = r.admitted+1, r.refused+uint64(i%10/9)
		l = m.next(r)
	}
	if math.Abs(l.Admitted-100) > 1e-3 || math.Abs(l.Refused-10) > 0.5 || math.Abs(l.Utilization-0.25) > 1e-6 {
		t.Errorf("steady: %+v, want 100 admitted and 10 refused a second, utilization 0.25", l)
	}

	// Declared bytes count with the units' cost.
	r.declared = 200 << 20
	if u := utilization(r); !near(u, 0.5) {
		t.Errorf("20 units of 10 MiB and 200 MiB declared in 800 MiB: utilization %v, want 0.5", u)
	}
	r.declared = 0
	// The time bound at 25 units: 20 in flight is 0.8 of it.
	r.timeLimit = 25
	if u := utilization(r); !near(u, 0.8) {
		t.Errorf("time bound 25, 20 in flight: utilization %v, want 0.8", u)
	}
	r.timeLimit = 0
	// A base past the target: the room is one unit.
	r.base = 1000 << 20
	if u := utilization(r); !near(u, 20) {
		t.Errorf("base past the target: utilization %v, want 20 (the units in flight)", u)
	}
	r.base = 100 << 20

	// Idle: utilization decays toward 0; a counter that goes back reads as
	// no work, not as a flood.
	r.inFlight, r.admitted = 0, 0
	r.now = r.now.Add(loadTau)
	if l := m.next(r); l.Admitted > 100 || l.Utilization > 0.25 {
		t.Errorf("after a counter went back: %+v, want the rates falling", l)
	}
	// A reading at the same instant changes nothing but memory.
	before := m.l
	r.usage = 2000
	if l := m.next(r); l.Admitted != before.Admitted || l.Utilization != before.Utilization || l.MemoryUtilization != 1 {
		t.Errorf("a reading at the same time: %+v after %+v, want the same rates and memory capped at 1", l, before)
	}
}

func TestLoadValuesFinite(t *testing.T) {
	for _, r := range []loadReading{
		{inFlight: math.MaxInt64, cost: math.MaxInt64, declared: math.MaxInt64, target: 1, base: math.MaxInt64},
		{inFlight: -5, cost: 1, target: 10},
		{inFlight: 5, timeLimit: 1},
		{inFlight: 5},
	} {
		u := utilization(r)
		if math.IsNaN(u) || u < 0 || u > maxLoadValue {
			t.Errorf("utilization(%+v) = %v, want within [0, %v]", r, u, float64(maxLoadValue))
		}
	}
	for _, c := range []struct{ usage, limit int64 }{{1, 0}, {1, -1}, {-1, 10}, {math.MaxInt64, 1}} {
		if m := memoryUtilization(c.usage, c.limit); m < 0 || m > 1 {
			t.Errorf("memoryUtilization(%d, %d) = %v, want within [0, 1]", c.usage, c.limit, m)
		}
	}
}

// TestLoadThroughTheGuard: the sampler's readings, fed by hand, reach
// Guard.Load: work admitted and refused is counted, memory is usage over
// the limit, and a stopped guard reports nothing.
func TestLoadThroughTheGuard(t *testing.T) {
	g := quietGuard(t, Config{Limit: 1 << 30})
	now := time.Now()
	feed := func() {
		r := admission.Reading{Now: now, LimitBytes: 1 << 30, Usage: 256 << 20, Fresh: true}
		g.workReading(&r)
		g.sampler.shed.apply(g, r, latency.Reading{Now: now, CPUs: 2})
	}
	feed()
	if l := g.Load(); l.MemoryUtilization != 0.25 || l.Admitted != 0 || l.Utilization != 0 {
		t.Errorf("first reading: %+v, want memory 0.25 alone", l)
	}
	var tickets []Ticket
	for range 8 {
		_, tk, ok := g.Enter(context.Background(), PriorityDefault)
		if !ok {
			t.Fatal("refused within the initial window")
		}
		tickets = append(tickets, tk)
	}
	g.decide(bound(8, 8, 1<<30), LevelNormal, now)
	if _, _, ok := g.Enter(context.Background(), PriorityDefault); ok {
		t.Fatal("admitted past a bound of 8")
	}
	now = now.Add(loadTau)
	feed()
	l := g.Load()
	step := 1 - 1/math.E
	if !near(l.Admitted, 8*step) || !near(l.Refused, step) || l.Utilization <= 0 || l.MemoryUtilization != 0.25 {
		t.Errorf("after 8 admitted and 1 refused in one loadTau: %+v, want rates %.3f and %.3f, utilization above 0", l, 8*step, step)
	}
	for _, tk := range tickets {
		tk.Done()
	}
	g.Stop()
	if l := g.Load(); l != (Load{}) {
		t.Errorf("stopped guard: %+v, want no load", l)
	}
	if l := Off().Load(); l != (Load{}) {
		t.Errorf("guard switched off: %+v, want no load", l)
	}
}

// envoyParseText is Envoy's parser of the endpoint-load-metrics header,
// ported rule for rule, for the TEXT form: envoyproxy/envoy,
// source/common/orca/orca_parser.cc (parseOrcaLoadReportHeaders,
// tryParseNativeHttpEncoded, tryCopyMetricToOrcaLoadReport), with
// HeaderUtility::parseCommaDelimitedHeader from
// source/common/http/header_utility.cc and absl::SimpleAtod. Its cases
// below come from test/common/orca/orca_parser_test.cc. Names map to the
// OrcaLoadReport fields they set; named metrics keep their prefix.
func envoyParseText(header string) (map[string]float64, error) {
	const prefix = "TEXT "
	if !strings.HasPrefix(header, prefix) {
		p := header[:min(5, len(header))]
		if i := strings.IndexByte(p, ' '); i >= 0 {
			p = p[:i]
		}
		return nil, fmt.Errorf("unsupported ORCA header format: %s", p) // BIN and JSON are not this test's
	}
	report := map[string]float64{}
	seen := map[string]bool{}
	for _, s := range strings.Split(header[len(prefix):], ",") {
		token := strings.Trim(s, asciiSpace)
		if token == "" {
			continue
		}
		// absl::StrSplit(token, absl::MaxSplits(':', 1), absl::SkipWhitespace())
		// into a pair: pieces that are empty or all whitespace are dropped.
		var pieces []string
		for _, p := range strings.SplitN(token, ":", 2) {
			if strings.Trim(p, asciiSpace) != "" {
				pieces = append(pieces, p)
			}
		}
		pieces = append(pieces, "", "")
		name, value := pieces[0], pieces[1]
		if seen[name] {
			return nil, fmt.Errorf("endpoint-load-metrics contains duplicate metric: %s", name)
		}
		if name == "" {
			return nil, errors.New("metric names cannot be empty strings")
		}
		if value == "" {
			return nil, errors.New("metric values cannot be empty strings")
		}
		v, ok := simpleAtod(value)
		switch {
		case !ok:
			return nil, fmt.Errorf("unable to parse custom backend load metric value(%s): %s", name, value)
		case math.IsNaN(v):
			return nil, fmt.Errorf("custom backend load metric value(%s) cannot be NaN.", name)
		case math.IsInf(v, 0):
			return nil, fmt.Errorf("custom backend load metric value(%s) cannot be infinity.", name)
		}
		switch {
		case strings.HasPrefix(name, "named_metrics."):
			if name == "named_metrics." {
				return nil, errors.New("named metric key is empty.")
			}
		case name == "cpu_utilization", name == "mem_utilization", name == "application_utilization", name == "eps", name == "rps_fractional":
		default:
			return nil, fmt.Errorf("unsupported metric name: %s", name)
		}
		report[name] = v
		seen[name] = true
	}
	return report, nil
}

// asciiSpace is what absl::StripAsciiWhitespace strips.
const asciiSpace = " \t\n\v\f\r"

// fromChars is the decimal text std::from_chars accepts in its general
// format: no hexadecimal, no leading '+', no digit separators.
var fromChars = regexp.MustCompile(`^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$|^-?(?i:inf|infinity|nan(\([0-9A-Za-z_]*\))?)$`)

// simpleAtod is absl::SimpleAtod: surrounding ASCII whitespace is
// stripped, one leading '+' is allowed (but not "+-"), the rest must be
// whole for from_chars, and a value out of range is an infinity.
func simpleAtod(s string) (float64, bool) {
	s = strings.Trim(s, asciiSpace)
	if strings.HasPrefix(s, "+") {
		s = s[1:]
		if strings.HasPrefix(s, "-") {
			return 0, false
		}
	}
	if !fromChars.MatchString(s) {
		return 0, false
	}
	if l := strings.ToLower(strings.TrimPrefix(s, "-")); strings.HasPrefix(l, "nan") {
		return math.NaN(), true
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return v, true // ParseFloat gives ±Inf past the range, as SimpleAtod does
}

// TestEnvoyParserPort holds the port to Envoy's own cases.
func TestEnvoyParserPort(t *testing.T) {
	got, err := envoyParseText("TEXT cpu_utilization:0.7,application_utilization:0.8,mem_utilization:0.9,rps_fractional:1000,eps:2,named_metrics.foo:123,named_metrics.bar:0.2")
	want := map[string]float64{"cpu_utilization": 0.7, "application_utilization": 0.8, "mem_utilization": 0.9, "rps_fractional": 1000, "eps": 2, "named_metrics.foo": 123, "named_metrics.bar": 0.2}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Envoy's NativeHttpEncodedHeader case: %v, %v; want %v", got, err, want)
	}
	for header, wantErr := range map[string]string{
		"":                           "unsupported ORCA header format: ",
		"BAD random-value":           "unsupported ORCA header format: BAD",
		"BADBAD random-value":        "unsupported ORCA header format: BADBA",
		`TEXT cpu_utilization:"0.7"`: `unable to parse custom backend load metric value(cpu_utilization): "0.7"`,
		"TEXT cpu_utilization:nan":   "custom backend load metric value(cpu_utilization) cannot be NaN.",
		"TEXT cpu_utilization:inf":   "custom backend load metric value(cpu_utilization) cannot be infinity.",
		"TEXT cpu_utilization:1e999": "custom backend load metric value(cpu_utilization) cannot be infinity.",
		"TEXT cpu_utilization:0.7,cpu_utilization:0.8":                                       "endpoint-load-metrics contains duplicate metric: cpu_utilization",
		"TEXT cpu_utilization:0.7,unsupported_metric:0.8":                                    "unsupported metric name: unsupported_metric",
		"TEXT named_metrics.foo:123,named_metrics.duplicate:123,named_metrics.duplicate:0.2": "endpoint-load-metrics contains duplicate metric: named_metrics.duplicate",
		"TEXT named_metrics.:123":                                                            "named metric key is empty.",
		"TEXT not-a-list-of-key-value-pairs":                                                 "metric values cannot be empty strings",
		"TEXT application_utilization=0.5":                                                   "metric values cannot be empty strings",
		"TEXT cpu_utilization:0x1p-2":                                                        "unable to parse custom backend load metric value(cpu_utilization): 0x1p-2",
		"TEXT cpu_utilization:+-1":                                                           "unable to parse custom backend load metric value(cpu_utilization): +-1",
		"TEXT cpu_utilization:1_000":                                                         "unable to parse custom backend load metric value(cpu_utilization): 1_000",
	} {
		if _, err := envoyParseText(header); err == nil || err.Error() != wantErr {
			t.Errorf("%q: error %v, want %q", header, err, wantErr)
		}
	}
	// What the parser lets through: space around pairs and values, empty
	// pairs, a leading '+', an exponent.
	if got, err := envoyParseText("TEXT  eps: 2 ,, rps_fractional:+1e3 "); err != nil || got["eps"] != 2 || got["rps_fractional"] != 1000 {
		t.Errorf("lenient forms: %v, %v", got, err)
	}
}

// checkLoadHeader parses header as Envoy would and checks it holds exactly
// the four values of l, made finite as the guard reports them, to the
// four significant digits it writes.
func checkLoadHeader(t *testing.T, header string, l Load) {
	t.Helper()
	got, err := envoyParseText(header)
	if err != nil {
		t.Fatalf("Envoy refuses %q: %v", header, err)
	}
	want := map[string]float64{
		"application_utilization": finite(l.Utilization),
		"mem_utilization":         min(1, finite(l.MemoryUtilization)),
		"rps_fractional":          finite(l.Admitted),
		"eps":                     finite(l.Refused),
	}
	if len(got) != len(want) {
		t.Fatalf("%q holds %v, want the four fields %v", header, got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || math.Abs(g-w) > 5e-4*w {
			t.Errorf("%q: %s = %v, want %v", header, k, g, w)
		}
	}
	if m := got["mem_utilization"]; m < 0 || m > 1 {
		t.Errorf("%q: mem_utilization %v outside [0, 1]", header, m)
	}
}

// TestLoadHeaderGrammar: every header the guard can write parses with
// Envoy's grammar, edge values included: none is ever NaN or infinite.
func TestLoadHeaderGrammar(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, l := range []Load{
		{},
		{Utilization: 0.52, MemoryUtilization: 0.61, Admitted: 120.5, Refused: 3},
		{Utilization: 7.25, MemoryUtilization: 1, Admitted: 1e-4, Refused: 123456789},
		{Utilization: nan, MemoryUtilization: nan, Admitted: nan, Refused: nan},
		{Utilization: inf, MemoryUtilization: inf, Admitted: inf, Refused: inf},
		{Utilization: -inf, MemoryUtilization: -1, Admitted: math.Copysign(0, -1), Refused: -5},
		{Utilization: math.MaxFloat64, MemoryUtilization: 2, Admitted: math.SmallestNonzeroFloat64, Refused: 1e300},
		{Utilization: maxLoadValue, Admitted: 0.99995, Refused: 9999.5},
	} {
		header := string(appendLoadHeader(nil, l))
		if !strings.HasPrefix(header, "TEXT application_utilization:") {
			t.Errorf("%+v: %q", l, header)
		}
		checkLoadHeader(t, header, l)
	}
}

func FuzzLoadHeader(f *testing.F) {
	f.Add(0.5, 0.25, 100.0, 1.0)
	f.Add(math.Inf(1), math.NaN(), -1.0, math.MaxFloat64)
	f.Fuzz(func(t *testing.T, u, m, a, r float64) {
		l := Load{Utilization: u, MemoryUtilization: m, Admitted: a, Refused: r}
		checkLoadHeader(t, string(appendLoadHeader(nil, l)), l)
	})
}

// TestMiddlewareReportsLoad: with Config.ReportLoad every response carries
// the header, the 503 of a refusal too, and it parses with Envoy's
// grammar; without it there is none.
func TestMiddlewareReportsLoad(t *testing.T) {
	g := quietGuard(t, Config{ReportLoad: true})
	l := Load{Utilization: 0.5, MemoryUtilization: 0.25, Admitted: 40, Refused: 2}
	g.load.set(l)
	h := g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	serve := func(g *Guard, h http.Handler) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		return rec
	}
	rec := serve(g, h)
	if rec.Code != http.StatusOK || len(rec.Header().Values("endpoint-load-metrics")) != 1 {
		t.Fatalf("admitted: status %d, header %q", rec.Code, rec.Header().Values("endpoint-load-metrics"))
	}
	checkLoadHeader(t, rec.Header().Get("endpoint-load-metrics"), l)

	g.decide(bound(0, 0, 0), LevelHigh, time.Now())
	l.Refused = 50
	g.load.set(l)
	rec = serve(g, h)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("past the bound: status %d, want 503", rec.Code)
	}
	checkLoadHeader(t, rec.Header().Get("endpoint-load-metrics"), l)

	plain := quietGuard(t, Config{})
	plain.load.set(l)
	if rec := serve(plain, plain.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))); rec.Header().Get("endpoint-load-metrics") != "" {
		t.Errorf("without ReportLoad: header %q", rec.Header().Get("endpoint-load-metrics"))
	}
}
