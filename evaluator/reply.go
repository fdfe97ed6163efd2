package evaluator

import (
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"unicode/utf8"
	"unsafe"
)

const xmlDeclaration = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// replyError fills d with S3's error answer to a preflight (§2.7): the XML <Error> body
// (Code, Message, then Method and ResourceType for 403s, then RequestId and HostId) and the
// headers x-amz-request-id, x-amz-id-2, Content-Type and, for 400s, Connection: close.
// No Access-Control-* headers and no Vary.
func (p *Policy) replyError(d *Decision, status int, code, message, method, resource string) {
	s := &d.scratch
	fillIDs(s)
	requestID := unsafe.String(&s.requestID[0], len(s.requestID))
	hostID := unsafe.String(&s.hostID[0], len(s.hostID))
	b := append(s.body[:0], xmlDeclaration+"<Error><Code>"...)
	b = append(b, code...)
	b = append(b, "</Code><Message>"...)
	b = append(b, message...)
	b = append(b, "</Message>"...)
	if status == 403 {
		b = append(b, "<Method>"...)
		b = appendEscaped(b, method)
		b = append(b, "</Method><ResourceType>"...)
		b = append(b, resource...)
		b = append(b, "</ResourceType>"...)
	}
	b = append(b, "<RequestId>"...)
	b = append(b, requestID...)
	b = append(b, "</RequestId><HostId>"...)
	b = append(b, hostID...)
	b = append(b, "</HostId></Error>"...)
	s.body = b
	d.Status, d.Body = status, b
	h := append(s.headers[:0],
		Header{HeaderRequestID, requestID},
		Header{HeaderID2, hostID},
		Header{HeaderContentType, "application/xml"})
	if status == 400 {
		h = append(h, Header{HeaderConnection, "close"})
	}
	d.Headers = h
}

// appendEscaped writes v as XML character data. The Method element echoes the request's
// Access-Control-Request-Method, so anything may arrive: markup characters are escaped, and
// bytes XML cannot carry (control characters, invalid UTF-8) become U+FFFD, so the body is
// always well-formed.
func appendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c == '\'':
				b = append(b, "&apos;"...)
			case c < ' ' && c != '\t' || c == 0x7f:
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, v[i:i+size]...)
		}
		i += size
	}
	return b
}

const upperHex = "0123456789ABCDEF"

// fillIDs writes a fresh x-amz-request-id (16 upper-case hex digits) and x-amz-id-2 (56
// random bytes in base64: 75 characters and one "=", as S3's are) into s.
//
// One 64-bit draw comes from the runtime's per-thread generator behind math/rand/v2, seeded
// once at start-up: no allocation, no lock, no system call, no timer. SplitMix64 stretches
// it to the 56 bytes of the host id. The ids identify a reply, they protect nothing, so a
// cryptographic source would be cost without benefit.
func fillIDs(s *decisionScratch) {
	seed := rand.Uint64()
	for i := 0; i < 8; i++ {
		b := byte(seed >> (56 - 8*i))
		s.requestID[2*i] = upperHex[b>>4]
		s.requestID[2*i+1] = upperHex[b&0xf]
	}
	var raw [56]byte
	x := seed
	for i := 0; i < len(raw); i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(raw[i:], z^z>>31)
	}
	base64.StdEncoding.Encode(s.hostID[:], raw[:])
}
