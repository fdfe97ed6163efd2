package evaluator

import (
	"encoding/binary"
	"slices"
	"unicode/utf8"
	"unsafe"
)

const xmlDeclaration = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

// errorReply is one of S3's error answers to a preflight (§2.7), its constant text joined at
// compile time: head is the body up to the <Method> value of a 403, or up to the <RequestId>
// value of a 400, which has no Method or ResourceType.
type errorReply struct {
	status int
	head   string
}

const errorHead = xmlDeclaration + "<Error><Code>"

var (
	errNoOrigin = errorReply{400, errorHead + "BadRequest</Code><Message>" +
		"Insufficient information. Origin request header needed.</Message><RequestId>"}
	errMissingRequestMethod = errorReply{400, errorHead + "BadRequest</Code><Message>" +
		"Invalid Access-Control-Request-Method: null</Message><RequestId>"}
	errBucketNotFound = errorReply{403, errorHead + "AccessForbidden</Code><Message>" +
		"CORSResponse: Bucket not found</Message><Method>"}
	errNotEnabled = errorReply{403, errorHead + "AccessForbidden</Code><Message>" +
		"CORSResponse: CORS is not enabled for this bucket.</Message><Method>"}
	errNotAllowed = errorReply{403, errorHead + "AccessForbidden</Code><Message>" +
		msgNotAllowed + "</Message><Method>"}
)

// The body after a 403's Method value, by resource, and after the request id.
const (
	tailBucket = "</Method><ResourceType>BUCKET</ResourceType><RequestId>"
	tailObject = "</Method><ResourceType>OBJECT</ResourceType><RequestId>"
	idsMiddle  = "</RequestId><HostId>"
	bodyEnd    = "</HostId></Error>"
	idsLen     = requestIDLen + len(idsMiddle) + hostIDLen + len(bodyEnd)
)

// replyError fills d with the error answer e: the XML <Error> body (Code, Message, then
// Method, the escaped method, and ResourceType, OBJECT when object is set, for 403s, then
// RequestId and HostId) and the headers x-amz-request-id, x-amz-id-2, Content-Type and, for
// 400s, Connection: close. No Access-Control-* headers and no Vary. The ids, made from seed,
// are written once, into the body; the two id headers point at them there.
func replyError(d *Decision, seed uint64, e *errorReply, method string, object bool) {
	s := &d.scratch
	tail := uint8(0) // none (400), 1 BUCKET, 2 OBJECT
	if e.status == 403 {
		tail = 1
		if object {
			tail = 2
		}
	} else {
		method = ""
	}
	if s.bodyHead == e && s.bodyTail == tail && len(s.body) == len(e.head)+len(method)+tailLen(tail)+idsLen && isPlainXML(method) {
		// The same answer as last time with a method of the same length that needs no
		// escaping: only the method and the ids change (only replyError writes the body).
		b := s.body
		copy(b[len(e.head):], method)
		fillErrorIDs(d, e, b[len(b)-idsLen:], seed)
		return
	}
	// The head is constant: a Decision that answered the same error last time still holds
	// it.
	var b []byte
	if s.bodyHead == e && len(s.body) >= len(e.head) {
		b = s.body[:len(e.head)]
	} else {
		b = append(s.body[:0], e.head...)
	}
	switch tail {
	case 1:
		b = append(appendEscaped(b, method), tailBucket...)
	case 2:
		b = append(appendEscaped(b, method), tailObject...)
	}
	off := len(b)
	b = slices.Grow(b, idsLen)[:off+idsLen]
	ids := b[off : off+idsLen]
	copy(ids[requestIDLen:], idsMiddle)
	copy(ids[idsLen-len(bodyEnd):], bodyEnd)
	s.body, s.bodyHead, s.bodyTail = b, e, tail
	fillErrorIDs(d, e, ids, seed)
}

func tailLen(tail uint8) int {
	if tail == 0 {
		return 0
	}
	return len(tailBucket) // = len(tailObject)
}

// fillErrorIDs writes the ids made from seed into ids, the end of an error body whose
// constant text is in place, and points d at the body and the headers at the ids.
func fillErrorIDs(d *Decision, e *errorReply, ids []byte, seed uint64) {
	s := &d.scratch
	ids = ids[:idsLen]
	putRequestID((*[requestIDLen]byte)(ids[:requestIDLen]), seed)
	putHostID((*[hostIDLen]byte)(ids[requestIDLen+len(idsMiddle):idsLen-len(bodyEnd)]), seed)
	d.Status, d.Body = e.status, s.body
	h := s.headers[:4]
	s.template = nil
	s.ids = [2]string{unsafe.String(&ids[0], requestIDLen), unsafe.String(&ids[requestIDLen+len(idsMiddle)], hostIDLen)}
	h[0] = Header{HeaderRequestID, s.ids[0]}
	h[1] = Header{HeaderID2, s.ids[1]}
	h[2] = Header{HeaderContentType, "application/xml"}
	if e.status == 400 {
		h[3] = Header{HeaderConnection, "close"}
	} else {
		h = h[:3]
	}
	d.Headers = h
}

// xmlPlain marks the bytes that appendEscaped copies as they are.
var xmlPlain = func() (t [256]bool) {
	for c := ' '; c < 0x7f; c++ {
		t[c] = true
	}
	t['\t'] = true
	for _, c := range `&<>"'` {
		t[c] = false
	}
	return t
}()

// appendEscaped writes v as XML character data. The Method element echoes the request's
// Access-Control-Request-Method, so anything may arrive: markup characters are escaped, and
// bytes XML cannot carry (control characters, invalid UTF-8) become U+FFFD, so the body is
// always well-formed. A value with nothing to escape, the usual case, is copied whole.
func appendEscaped(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		if !xmlPlain[v[i]] {
			return appendEscapedSlow(append(b, v[:i]...), v[i:])
		}
	}
	return append(b, v...)
}

// isPlainXML reports whether appendEscaped copies v as it is.
func isPlainXML(v string) bool {
	for i := 0; i < len(v); i++ {
		if !xmlPlain[v[i]] {
			return false
		}
	}
	return true
}

func appendEscapedSlow(b []byte, v string) []byte {
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

// The ids' lengths: x-amz-request-id is 16 upper-case hex digits, x-amz-id-2 the base64 of
// 56 bytes (75 characters and one "="), as S3's are.
const (
	requestIDLen = 16
	hostIDLen    = 76
)

// Each reply's ids come from one 64-bit draw from the runtime's per-thread generator behind
// math/rand/v2, seeded once at start-up: no allocation, no lock, no system call, no timer.
// The request id is that draw in hex; SplitMix64 stretches it to the 56 bytes of the host
// id. The ids identify a reply, they protect nothing, so a cryptographic source would be
// cost without benefit.

// fillIDs writes the ids made from seed into s, for an allowed preflight's headers.
func fillIDs(s *decisionScratch, seed uint64) {
	putRequestID(&s.requestID, seed)
	putHostID(&s.hostID, seed)
	s.ids = [2]string{unsafe.String(&s.requestID[0], len(s.requestID)), unsafe.String(&s.hostID[0], len(s.hostID))}
}

// putRequestID writes seed as 16 upper-case hex digits, most significant first.
func putRequestID(dst *[requestIDLen]byte, seed uint64) {
	binary.BigEndian.PutUint64(dst[:8], hex8(uint32(seed>>32)))
	binary.BigEndian.PutUint64(dst[8:], hex8(uint32(seed)))
}

// hex8 spreads the eight nibbles of u into the eight bytes of a word, the least significant
// nibble in the lowest byte, and turns each into its upper-case hex digit: no table, no loop.
func hex8(u uint32) uint64 {
	v := uint64(u)
	v = (v | v<<16) & 0x0000ffff0000ffff
	v = (v | v<<8) & 0x00ff00ff00ff00ff
	v = (v | v<<4) & 0x0f0f0f0f0f0f0f0f
	// Bytes over 9 get the 7 that separates '9'+1 from 'A'.
	letters := (v + (0x80-10)*lsb) >> 7 & lsb
	return v + '0'*lsb + letters*('A'-'9'-1)
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// base64Pairs maps 12 bits to their two base64 characters (the first in the low byte), so
// three input bytes take two look-ups. 8 KB, built once at start-up.
var base64Pairs = func() (t [4096]uint16) {
	for i := range t {
		t[i] = uint16(base64Alphabet[i>>6]) | uint16(base64Alphabet[i&63])<<8
	}
	return t
}()

// base64Word encodes the first six of the eight bytes of b as eight characters, the first in
// the low byte.
func base64Word(b []byte) uint64 {
	v := binary.BigEndian.Uint64(b)
	return uint64(base64Pairs[v>>52]) | uint64(base64Pairs[v>>40&0xfff])<<16 |
		uint64(base64Pairs[v>>28&0xfff])<<32 | uint64(base64Pairs[v>>16&0xfff])<<48
}

// putHostID writes the standard base64 (padded) of the 56 bytes SplitMix64 makes from seed.
func putHostID(dst *[hostIDLen]byte, seed uint64) {
	var raw [64]byte // 56 bytes and room for the last 8-byte load
	x := seed
	for i := range 7 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(raw[8*i:8*i+8], z^z>>31)
	}
	// Six bytes (48 bits) at a time become eight characters, stored as one word; unrolled,
	// so that every offset is a constant and no bounds check is left.
	binary.LittleEndian.PutUint64(dst[0:8], base64Word(raw[0:8]))
	binary.LittleEndian.PutUint64(dst[8:16], base64Word(raw[6:14]))
	binary.LittleEndian.PutUint64(dst[16:24], base64Word(raw[12:20]))
	binary.LittleEndian.PutUint64(dst[24:32], base64Word(raw[18:26]))
	binary.LittleEndian.PutUint64(dst[32:40], base64Word(raw[24:32]))
	binary.LittleEndian.PutUint64(dst[40:48], base64Word(raw[30:38]))
	binary.LittleEndian.PutUint64(dst[48:56], base64Word(raw[36:44]))
	binary.LittleEndian.PutUint64(dst[56:64], base64Word(raw[42:50]))
	binary.LittleEndian.PutUint64(dst[64:72], base64Word(raw[48:56]))
	// The last two bytes: three characters and the padding.
	b0, b1 := raw[54], raw[55]
	p := base64Pairs[uint(b0)<<4|uint(b1>>4)]
	dst[72], dst[73], dst[74], dst[75] = byte(p), byte(p>>8), base64Alphabet[b1&15<<2], '='
}
