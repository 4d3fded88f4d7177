package driver

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// pionLogs routes pion's warnings and errors to slog; debug and trace are
// dropped (per-packet chatter on hot paths).
type pionLogs struct{ l *slog.Logger }

func (f pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{l: f.l.With("pion", scope)}
}

type pionLogger struct{ l *slog.Logger }

func (p pionLogger) Trace(string)          {}
func (p pionLogger) Tracef(string, ...any) {}
func (p pionLogger) Debug(string)          {}
func (p pionLogger) Debugf(string, ...any) {}
func (p pionLogger) Info(msg string)       { p.log(slog.LevelInfo, msg) }
func (p pionLogger) Infof(f string, a ...any) {
	if p.l.Enabled(context.Background(), slog.LevelInfo) {
		p.log(slog.LevelInfo, fmt.Sprintf(f, a...))
	}
}
func (p pionLogger) Warn(msg string)            { p.log(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(f string, a ...any)   { p.log(slog.LevelWarn, fmt.Sprintf(f, a...)) }
func (p pionLogger) Error(msg string)           { p.log(slog.LevelError, msg) }
func (p pionLogger) Errorf(f string, a ...any)  { p.log(slog.LevelError, fmt.Sprintf(f, a...)) }
func (p pionLogger) log(l slog.Level, m string) { p.l.Log(context.Background(), l, m) }
