package evaluator

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/bits"
	"sort"
)

// A policy image is a whole configuration compiled to one compact, versioned, checksummed
// block of bytes that LoadImage uses in place: bucket lookups read its hash table, and each
// distinct rule set is compiled from it only when a request first needs it (see imageIndex).
// Buckets with equal rules share one rule set, as they share compiled rules in a Policy.
//
// Layout, format version 1; every integer is little-endian, every offset counts from the
// image's first byte:
//
//	header, imageHeaderSize bytes:
//	   0  magic "\x89s3cors\n" (not text: no JSON or YAML document starts so)
//	   8  u32 format version
//	  12  u32 image size in bytes, trailer included
//	  16  u32 flags: imagePathStyle, imageStrip, imageVary; unlisted mode << 8
//	  20  u32 buckets n
//	  24  u32 hash table slots (a power of two above n)
//	  28  u32 longest probe: every bucket is found within this many slots after its home
//	  32  u32 rule sets
//	  36  u32 the default's rule set, imageNoSet when there is no default
//	  40  u32 fixed header sets (Policy.FixedHeaders)
//	  44  u32 virtual-host suffixes
//	  48  u32 offset of the bucket table: n entries of (name offset, name length, rule set
//	          or imageNoSet for a bucket without CORS), u32 each, in name order
//	  52  u32 offset of the hash table: slots u32, bucket index + 1, 0 for an empty slot
//	  56  u32 offset of the rule set offsets: rule sets + 1 u32, set i spans [off[i], off[i+1])
//	  60  u32 offset of the fixed header set offsets: fixed sets + 1 u32, likewise
//	  64  u32 offset of the suffixes: (offset, length) u32 pairs, as configured
//	  68  u32 strings: the distinct values of every rule, each stored once
//	  72  u32 offset of the string offsets: strings + 1 u32, string i spans [off[i], off[i+1])
//	  76  u32 zero
//	the tables, names, suffixes, strings, rule sets and fixed header sets
//	trailer: u32 CRC-32C (Castagnoli) of every byte before it
//
// A rule set is a sequence of unsigned varints: the rule count, then per rule its fixed
// header set, its ID (string + 1, 0 when unset), AllowedOrigins, AllowedMethods,
// AllowedHeaders and ExposeHeaders (each a count, then a string per value) and
// MaxAgeSeconds (value + 1, 0 when unset). Each distinct value is thus checked once when an
// image is loaded, however many rule sets list it. A fixed header set is a count, then name
// and value per header, each a length and bytes.
const (
	imageMagic      = "\x89s3cors\n"
	ImageVersion    = 1 // the image format this evaluator writes and reads
	imageHeaderSize = 80
	imageTrailer    = 4
	imageNoSet      = 0xffffffff

	imagePathStyle = 1 << 0
	imageStrip     = 1 << 1
	imageVary      = 1 << 2
)

// MaxImageSize is the largest image LoadImage accepts (64 MiB), refused before anything is
// allocated for it: 100,000 buckets with rules of their own take about a fifth of it.
const MaxImageSize = 64 << 20

// The unlisted modes, in the flags' second byte.
const (
	imageUnlistedNotEnabled = iota
	imageUnlistedNotFound
	imageUnlistedForward
	imageUnlistedDefault
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IsImage reports whether data starts like a policy image (the magic alone: LoadImage says
// whether the rest is one).
func IsImage(data []byte) bool {
	return len(data) >= len(imageMagic) && string(data[:len(imageMagic)]) == imageMagic
}

// CompileImage validates a configuration as Compile does and returns its policy image.
// Equal configurations give byte-identical images.
func CompileImage(cfg *Config) ([]byte, error) {
	p, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	return p.Image()
}

// Image returns the policy's image: a copy of it for a policy loaded from one, else the
// image encoded from the configuration it was compiled from.
func (p *Policy) Image() ([]byte, error) {
	if p.img != nil {
		return []byte(p.img.data), nil
	}
	return encodeImage(p)
}

// imageWriter builds an image: fixed-size tables first, then variable-length blobs.
type imageWriter struct {
	b []byte
}

func (w *imageWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *imageWriter) uvarint(v uint64) {
	w.b = binary.AppendUvarint(w.b, v)
}
func (w *imageWriter) str(s string) {
	w.uvarint(uint64(len(s)))
	w.b = append(w.b, s...)
}
func (w *imageWriter) list(vs []string, strs *stringTable) {
	w.uvarint(uint64(len(vs)))
	for _, v := range vs {
		w.uvarint(uint64(strs.index(v)))
	}
}

// stringTable numbers distinct strings in the order first met.
type stringTable struct {
	ids  map[string]int
	list []string
}

func (t *stringTable) index(s string) int {
	i, ok := t.ids[s]
	if !ok {
		i = len(t.list)
		t.ids[s] = i
		t.list = append(t.list, s)
	}
	return i
}
func (w *imageWriter) put32(at int, v uint32) { binary.LittleEndian.PutUint32(w.b[at:], v) }

// checkedU32 is v as a u32 field of the image, or an error naming what is too large.
func checkedU32(what string, v int) (uint32, error) {
	if v < 0 || v > MaxImageSize {
		return 0, errors.New("evaluator: image: " + what + " is over the image size limit")
	}
	return uint32(v), nil
}

func encodeImage(p *Policy) ([]byte, error) {
	cfg := p.cfg
	names := make([]string, 0, len(cfg.Buckets))
	for n := range cfg.Buckets {
		names = append(names, n)
	}
	sort.Strings(names)

	// One rule set per distinct compiled configuration, in the order buckets name them.
	type set struct {
		rules []Rule
		c     *compiledCORS
	}
	var sets []set
	setOf := map[*compiledCORS]uint32{}
	bucketSet := make([]uint32, len(names))
	for i, n := range names {
		b := cfg.Buckets[n]
		c := p.buckets[n].compiledCORS
		if c.state != bucketRules {
			bucketSet[i] = imageNoSet
			continue
		}
		idx, ok := setOf[c]
		if !ok {
			idx = uint32(len(sets))
			setOf[c] = idx
			sets = append(sets, set{b.Rules, c})
		}
		bucketSet[i] = idx
	}
	defaultSet := uint32(imageNoSet)
	if cfg.Default != nil && p.unlisted != nil && p.unlisted.state == bucketRules {
		defaultSet = uint32(len(sets))
		sets = append(sets, set{cfg.Default.Rules, p.unlisted.compiledCORS})
	}

	var flags uint32
	if p.path {
		flags |= imagePathStyle
	}
	if p.strip {
		flags |= imageStrip
	}
	if p.vary {
		flags |= imageVary
	}
	switch {
	case cfg.Default != nil:
		flags |= imageUnlistedDefault << 8
	case cfg.UnlistedBuckets == UnlistedForward:
		flags |= imageUnlistedForward << 8
	case cfg.UnlistedBuckets == UnlistedNotFound:
		flags |= imageUnlistedNotFound << 8
	}

	strs := &stringTable{ids: map[string]int{}}
	for _, s := range sets {
		for j := range s.rules {
			r := &s.rules[j]
			if r.ID != nil {
				strs.index(*r.ID)
			}
			for _, vs := range [][]string{r.AllowedOrigins, r.AllowedMethods, r.AllowedHeaders, r.ExposeHeaders} {
				for _, v := range vs {
					strs.index(v)
				}
			}
		}
	}
	slots := imageSlots(len(names))
	suffixes := cfg.Addressing.VirtualHostSuffixes
	w := &imageWriter{b: make([]byte, imageHeaderSize, imageHeaderSize+len(names)*24)}
	copy(w.b, imageMagic)
	bucketsOff := len(w.b)
	w.b = append(w.b, make([]byte, 12*len(names))...)
	tableOff := len(w.b)
	w.b = append(w.b, make([]byte, 4*slots)...)
	setsOff := len(w.b)
	w.b = append(w.b, make([]byte, 4*(len(sets)+1))...)
	fixedOff := len(w.b)
	w.b = append(w.b, make([]byte, 4*(len(p.fixed)+1))...)
	suffixesOff := len(w.b)
	w.b = append(w.b, make([]byte, 8*len(suffixes))...)
	stringsOff := len(w.b)
	w.b = append(w.b, make([]byte, 4*(len(strs.list)+1))...)
	for i, s := range strs.list {
		w.put32(stringsOff+4*i, uint32(len(w.b)))
		w.b = append(w.b, s...)
	}
	w.put32(stringsOff+4*len(strs.list), uint32(len(w.b)))

	for i, s := range suffixes {
		w.put32(suffixesOff+8*i, uint32(len(w.b)))
		w.put32(suffixesOff+8*i+4, uint32(len(s)))
		w.b = append(w.b, s...)
	}
	for i, n := range names {
		e := bucketsOff + 12*i
		w.put32(e, uint32(len(w.b)))
		w.put32(e+4, uint32(len(n)))
		w.put32(e+8, bucketSet[i])
		w.b = append(w.b, n...)
	}
	longest := 0
	mask := uint64(slots - 1)
	for i, n := range names {
		h := imageHash(n)
		for k := 0; ; k++ {
			at := tableOff + 4*int((h+uint64(k))&mask)
			if binary.LittleEndian.Uint32(w.b[at:]) == 0 {
				w.put32(at, uint32(i+1))
				longest = max(longest, k)
				break
			}
		}
	}
	for i, s := range sets {
		w.put32(setsOff+4*i, uint32(len(w.b)))
		w.uvarint(uint64(len(s.rules)))
		for j := range s.rules {
			r := &s.rules[j]
			w.uvarint(uint64(s.c.rules[j].fixed))
			if r.ID == nil {
				w.uvarint(0)
			} else {
				w.uvarint(uint64(strs.index(*r.ID)) + 1)
			}
			w.list(r.AllowedOrigins, strs)
			w.list(r.AllowedMethods, strs)
			w.list(r.AllowedHeaders, strs)
			w.list(r.ExposeHeaders, strs)
			if r.MaxAgeSeconds == nil {
				w.uvarint(0)
			} else {
				w.uvarint(uint64(*r.MaxAgeSeconds) + 1)
			}
		}
	}
	w.put32(setsOff+4*len(sets), uint32(len(w.b)))
	for i, hs := range p.fixed {
		w.put32(fixedOff+4*i, uint32(len(w.b)))
		w.uvarint(uint64(len(hs)))
		for _, h := range hs {
			w.str(h.Name)
			w.str(h.Value)
		}
	}
	w.put32(fixedOff+4*len(p.fixed), uint32(len(w.b)))

	size, err := checkedU32("the encoded configuration", len(w.b)+imageTrailer)
	if err != nil {
		return nil, err
	}
	for i, v := range []uint32{ImageVersion, size, flags, uint32(len(names)), uint32(slots), uint32(longest),
		uint32(len(sets)), defaultSet, uint32(len(p.fixed)), uint32(len(suffixes)),
		uint32(bucketsOff), uint32(tableOff), uint32(setsOff), uint32(fixedOff), uint32(suffixesOff),
		uint32(len(strs.list)), uint32(stringsOff), 0} {
		w.put32(8+4*i, v)
	}
	w.u32(crc32.Checksum(w.b, castagnoli))
	return w.b, nil
}

// imageSlots is the hash table size for n buckets: a power of two with at most two thirds
// of its slots used, so that a missing name meets an empty slot within a few probes.
func imageSlots(n int) int {
	want := n + n/2 + 1
	return 1 << bits.Len(uint(want-1))
}

// imageHash is FNV-1a, 64 bits: the image fixes it, so it cannot be seeded per process. A
// request can only look a name up; collisions are the configuration's, which is trusted,
// and the longest probe is bounded by the header.
func imageHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
