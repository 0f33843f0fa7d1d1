package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logConfig is shared by every role: structured logs on stderr.
type logConfig struct {
	Level  string
	Format string
}

func (c *logConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.Format, "log-format", "text", "log format: text or json")
}

func (c *logConfig) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: use debug, info, warn or error", c.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("-log-format %q: use text or json", c.Format)
	}
}
