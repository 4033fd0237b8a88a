package proxy

import (
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// accessEntry is one access-log line's fields, in the order they appear.
type accessEntry struct {
	requestID, method, path, route string
	status                         int
	durationMS                     float64
	bytes                          int64
	userID, remote, errKind        string
}

// accessLog writes access-log lines to the log's output directly, byte for
// byte as zap's JSON encoder with frontdoor's settings writes them
// (TestAccessLogMatchesZap compares the two on hostile input). One line per
// request made zap, with its field values, checked entry and encoder, the
// largest single cost of a proxied request after the system calls; this
// appends into a pooled buffer instead.
type accessLog struct {
	out  io.Writer
	bufs sync.Pool // *[]byte
}

func newAccessLog(out io.Writer) *accessLog { return &accessLog{out: out} }

func (l *accessLog) write(ts time.Time, e *accessEntry) {
	bp, _ := l.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 512)
		bp = &b
	}
	b := append((*bp)[:0], `{"level":"info","ts":"`...)
	b = ts.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","msg":"request","request_id":`...)
	b = appendJSONString(b, e.requestID)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.method)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.path)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendJSONFloat(b, e.durationMS)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.bytes, 10)
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, e.userID)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, e.remote)
	if e.errKind != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, e.errKind)
	}
	b = append(b, "}\n"...)
	_, _ = l.out.Write(b) // as zap does, a failed log write is not the request's failure
	*bp = b
	if cap(b) <= 4096 {
		l.bufs.Put(bp)
	}
}

// appendJSONFloat writes f as zap does: shortest decimal, NaN and the
// infinities as strings.
func appendJSONFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// appendJSONString writes s quoted the way zap does: '"' and '\\'
// backslash-escaped, \n \r \t by name, other bytes below 0x20 as \u00XX,
// invalid UTF-8 as \ufffd, everything else as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"
