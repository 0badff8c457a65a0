package guard

import (
	"fmt"
	"os"
	"strings"

	"github.com/oomguard/oomguard/internal/envconfig"
)

// The environment variables Start honours. The environment wins over
// Config, so that an operator can change a deployed service without a
// build; each override is logged.
const (
	// EnvSwitch turns the guard off with "off": Start then returns an inert
	// guard that never sheds, writes nothing and leaves GOMEMLIMIT alone.
	// "on" or empty leaves it on.
	EnvSwitch = "OOMGUARD"
	// EnvLimit sets Config.Limit: bytes, or the GOMEMLIMIT syntax such as
	// "512MiB".
	EnvLimit = "OOMGUARD_LIMIT"
	// EnvRatio sets Config.MemoryLimitRatio, in (0, 1].
	EnvRatio = "OOMGUARD_RATIO"
	// EnvDumpDir sets Config.DumpDir.
	EnvDumpDir = "OOMGUARD_DUMP_DIR"
	// EnvTimeBound turns the time bound off with "off" (see
	// Config.DisableTimeBound); "on" or empty leaves Config as it is.
	EnvTimeBound = "OOMGUARD_TIME_BOUND"
	// EnvReportLoad sets Config.ReportLoad: "on" writes the load report
	// header, "off" does not; empty leaves Config as it is.
	EnvReportLoad = "OOMGUARD_REPORT_LOAD"
)

// envOverride is one setting the environment made.
type envOverride struct {
	name, value string
}

// fromEnv applies the environment to c. It reports whether the guard is
// switched off, and which variables overrode c.
func (c Config) fromEnv(lookup func(string) (string, bool)) (_ Config, off bool, set []envOverride, err error) {
	bad := func(name, v, reason string) (Config, bool, []envOverride, error) {
		return Config{}, false, nil, &ConfigError{Variable: name, Value: v, Reason: reason}
	}
	if v, ok := lookup(EnvSwitch); ok {
		switch v {
		case "off":
			return c, true, []envOverride{{EnvSwitch, v}}, nil
		case "on", "":
		default:
			return bad(EnvSwitch, v, `must be "off", "on" or empty`)
		}
	}
	if v, ok := lookup(EnvLimit); ok {
		n, err := envconfig.ParseBytes(v)
		if err != nil {
			return bad(EnvLimit, v, strings.TrimPrefix(err.Error(), "envconfig: "))
		}
		if n < 1<<20 {
			return bad(EnvLimit, v, "must be at least 1 MiB")
		}
		c.Limit = n
		set = append(set, envOverride{EnvLimit, v})
	}
	if v, ok := lookup(EnvRatio); ok {
		r, err := envconfig.ParseRatio(v)
		if err != nil {
			return bad(EnvRatio, v, strings.TrimPrefix(err.Error(), "envconfig: "))
		}
		if r < 0.1 {
			return bad(EnvRatio, v, "must be at least 0.1: a smaller GOMEMLIMIT keeps the GC running flat out")
		}
		c.MemoryLimitRatio = r
		set = append(set, envOverride{EnvRatio, v})
	}
	if v, ok := lookup(EnvTimeBound); ok {
		switch v {
		case "off":
			c.DisableTimeBound = true
			set = append(set, envOverride{EnvTimeBound, v})
		case "on", "":
		default:
			return bad(EnvTimeBound, v, `must be "off", "on" or empty`)
		}
	}
	if v, ok := lookup(EnvReportLoad); ok {
		switch v {
		case "on", "off":
			c.ReportLoad = v == "on"
			set = append(set, envOverride{EnvReportLoad, v})
		case "":
		default:
			return bad(EnvReportLoad, v, `must be "on", "off" or empty`)
		}
	}
	if v, ok := lookup(EnvDumpDir); ok {
		c.DumpDir = v
		set = append(set, envOverride{EnvDumpDir, v})
	}
	return c, false, set, nil
}

func (o envOverride) String() string { return fmt.Sprintf("%s=%q", o.name, o.value) }

var lookupEnv = os.LookupEnv
