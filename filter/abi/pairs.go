package abi

import (
	"encoding/binary"
	"errors"
	"unsafe"
)

// Limits Envoy applies to a pairs buffer a guest sends (proxy-wasm-cpp-host limits.h); a buffer
// over either is silently treated as empty by the host, so EncodePairs refuses it instead.
const (
	MaxPairsBytes = 1 << 20
	MaxPairsCount = 1024
)

// ErrPairs reports a malformed or oversized header-pairs buffer.
var ErrPairs = errors.New("abi: malformed header pairs")

// EncodePairs appends the proxy-wasm serialisation of headers to dst (spec §1.6: a u32 count,
// then a (name length, value length) u32 pair per header, then each name and value followed by
// a NUL; all little-endian). An empty list encodes as a zero count.
func EncodePairs(dst []byte, headers []Header) ([]byte, error) {
	if len(headers) > MaxPairsCount {
		return dst, ErrPairs
	}
	size := 4
	for _, h := range headers {
		size += 8 + len(h.Name) + 1 + len(h.Value) + 1
	}
	if size > MaxPairsBytes {
		return dst, ErrPairs
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(headers)))
	for _, h := range headers {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Name)))
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Value)))
	}
	for _, h := range headers {
		dst = append(dst, h.Name...)
		dst = append(dst, 0)
		dst = append(dst, h.Value...)
		dst = append(dst, 0)
	}
	return dst, nil
}

// DecodePairs appends the headers serialised in b to dst. An empty b (the host's ptr=0,size=0
// for an empty map) is an empty list. The strings point into b and are valid as long as b is
// neither freed nor overwritten: copy them to keep them.
func DecodePairs(dst []Header, b []byte) ([]Header, error) {
	if len(b) == 0 {
		return dst, nil
	}
	if len(b) < 4 {
		return dst, ErrPairs
	}
	n := binary.LittleEndian.Uint32(b)
	// Each pair takes at least 10 bytes (two lengths, two NULs): bound n before trusting it.
	if uint64(n) > uint64(len(b)-4)/10 {
		return dst, ErrPairs
	}
	start := len(dst)
	lens := b[4:]
	data := 4 + 8*int(n)
	for i := 0; i < int(n); i++ {
		kl := int(binary.LittleEndian.Uint32(lens[8*i:]))
		vl := int(binary.LittleEndian.Uint32(lens[8*i+4:]))
		if kl < 0 || vl < 0 || kl > len(b)-data-1 || b[data+kl] != 0 {
			return dst[:start], ErrPairs
		}
		name := bytesString(b[data : data+kl])
		data += kl + 1
		if vl > len(b)-data-1 || b[data+vl] != 0 {
			return dst[:start], ErrPairs
		}
		value := bytesString(b[data : data+vl])
		data += vl + 1
		dst = append(dst, Header{Name: name, Value: value})
	}
	if data != len(b) {
		return dst[:start], ErrPairs
	}
	return dst, nil
}

// bytesString views b as a string without copying; b must not change while the string is used.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
