package server

import (
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// lineWriter writes request lines itself, in the shape slog's JSON
// handler gives them ({"time":…,"level":…,"msg":"request",…}), to w:
// formatting a line through slog cost about as much as the rest of a
// redirect. It keeps LOG_LEVEL (level) as the slog path does (the server
// applies LOG_SAMPLE to both), and one Write is one whole line.
type lineWriter struct {
	w     io.Writer
	level slog.Level // lines below it are not written
	now   func() time.Time
}

var linePool = sync.Pool{New: func() any { return &line{b: make([]byte, 0, 512)} }}

// line is a request line being built. Every string value has been
// scrubbed by the caller where it can hold a secret (path, query, error).
type line struct {
	b []byte
}

func (l *line) str(key, v string) {
	l.b = append(l.b, ',', '"')
	l.b = append(l.b, key...)
	l.b = append(l.b, '"', ':')
	l.b = appendJSONString(l.b, v)
}

func (l *line) int(key string, v int64) {
	l.b = append(l.b, ',', '"')
	l.b = append(l.b, key...)
	l.b = append(l.b, '"', ':')
	l.b = strconv.AppendInt(l.b, v, 10)
}

func (l *line) ms(key string, d time.Duration) {
	l.b = append(l.b, ',', '"')
	l.b = append(l.b, key...)
	l.b = append(l.b, '"', ':')
	l.b = strconv.AppendFloat(l.b, float64(d.Microseconds())/1000, 'f', -1, 64)
}

func (l *line) bool(key string, v bool) {
	l.b = append(l.b, ',', '"')
	l.b = append(l.b, key...)
	l.b = append(l.b, '"', ':')
	l.b = strconv.AppendBool(l.b, v)
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 as U+FFFD, and U+2028/2029
// escaped as slog does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			if r == utf8.RuneError {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// begin starts a line at level, or reports false when the line is below
// LOG_LEVEL.
func (lw *lineWriter) begin(level slog.Level) (*line, bool) {
	if level < lw.level {
		return nil, false
	}
	l := linePool.Get().(*line)
	l.b = append(l.b[:0], `{"time":`...)
	l.b = append(l.b, '"')
	l.b = lw.now().AppendFormat(l.b, time.RFC3339Nano)
	l.b = append(l.b, `","level":`...)
	l.b = appendJSONString(l.b, level.String())
	l.b = append(l.b, `,"msg":"request"`...)
	return l, true
}

// end finishes the line and writes it.
func (lw *lineWriter) end(l *line) {
	l.b = append(l.b, '}', '\n')
	lw.w.Write(l.b)
	if cap(l.b) <= 4<<10 {
		linePool.Put(l)
	}
}
