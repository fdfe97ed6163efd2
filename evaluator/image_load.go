package evaluator

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
	"sync/atomic"
	"unsafe"
)

// imageCacheSets is the number of compiled rule sets an image policy keeps (a few KiB each):
// a bucket whose rule set is not among them compiles it again, from the image, on its next
// request. Buckets that share rules share one entry.
const imageCacheSets = 4096

// imageIndex is a Policy's view of the image it was loaded from. Nothing in it is per
// bucket: lookups hash the name into the image's table and compare it with the name stored
// there; a bucket's rule set is compiled on first use into a direct-mapped cache.
type imageIndex struct {
	data                                    string // the image, used in place
	nBuckets, slotMask, longest             uint32
	nSets, nFixed, nStrings                 uint32
	bucketsOff, tableOff, setsOff, fixedOff int
	stringsOff                              int
	cache                                   []atomic.Pointer[cachedSet]
	noCORS                                  *compiledCORS // every listed bucket without CORS
}

type cachedSet struct {
	set uint32
	c   *compiledCORS
}

// imageError is a malformed image, named by what is wrong.
func imageError(format string, args ...any) error {
	return fmt.Errorf("evaluator: image: "+format, args...)
}

// LoadImage loads a policy image (CompileImage) and returns its policy, which uses the image
// in place: image must not be modified afterwards. The image is checked whole before it is
// used: its size (at most MaxImageSize), format version, checksum, every offset and length,
// every bucket name and every rule as Compile would check it. A policy from an image gives
// the decisions the configuration it was compiled from gives; its Config is nil.
func LoadImage(image []byte) (*Policy, error) {
	if len(image) > MaxImageSize {
		return nil, imageError("%d bytes is over the %d-byte limit (MaxImageSize)", len(image), MaxImageSize)
	}
	if !IsImage(image) {
		return nil, notAnImage(image)
	}
	if len(image) < imageHeaderSize+imageTrailer {
		return nil, imageError("truncated: %d bytes, shorter than the %d-byte header", len(image), imageHeaderSize+imageTrailer)
	}
	if v := binary.LittleEndian.Uint32(image[8:]); v != ImageVersion {
		return nil, imageError("format version %d; this s3cors reads version %d: compile the configuration again with this s3cors (s3cors compile)", v, ImageVersion)
	}
	if size := binary.LittleEndian.Uint32(image[12:]); uint64(size) != uint64(len(image)) {
		if uint64(size) > uint64(len(image)) {
			return nil, imageError("truncated: %d bytes of the %d its header gives", len(image), size)
		}
		return nil, imageError("%d bytes where its header gives %d: bytes were added after it", len(image), size)
	}
	end := len(image) - imageTrailer
	if want, got := binary.LittleEndian.Uint32(image[end:]), crc32.Checksum(image[:end], castagnoli); want != got {
		return nil, imageError("checksum mismatch: the image says CRC-32C %08x, its bytes give %08x (corrupted in transit or storage)", want, got)
	}
	// The image is kept as a string so that bucket names and rule values are substrings of
	// it: the caller hands it over, and a string header keeps the pointer visible to the GC.
	return loadImage(unsafe.String(unsafe.SliceData(image), len(image)))
}

// notAnImage explains data that lacks the image magic, naming what it looks like instead.
func notAnImage(data []byte) error {
	head := data[:min(len(data), 8)]
	t := strings.TrimLeft(string(data[:min(len(data), 64)]), blanks)
	if t != "" && (t[0] == '{' || t[0] == '[' || t[0] == '<') {
		return imageError("not a policy image but what looks like a configuration document (starts with %q): load it as a configuration, or compile it first with s3cors compile", head)
	}
	return imageError("not a policy image: it starts with %q, not the image magic %q", head, imageMagic)
}

// reader reads the image's fixed fields; every read is bounds-checked by the caller.
func le32(s string, at int) uint32 {
	return uint32(s[at]) | uint32(s[at+1])<<8 | uint32(s[at+2])<<16 | uint32(s[at+3])<<24
}

func loadImage(data string) (*Policy, error) {
	end := len(data) - imageTrailer
	h := func(i int) uint32 { return le32(data, 16+4*i) }
	flags, nBuckets, slots, longest := h(0), h(1), h(2), h(3)
	nSets, defaultSet, nFixed, nSuffixes := h(4), h(5), h(6), h(7)
	bucketsOff, tableOff, setsOff, fixedOff, suffixesOff := h(8), h(9), h(10), h(11), h(12)
	nStrings, stringsOff := h(13), h(14)
	if h(15) != 0 {
		return nil, imageError("header field at offset %d is %d, not zero", 16+4*15, h(15))
	}
	if flags&^(imagePathStyle|imageStrip|imageVary|3<<8) != 0 {
		return nil, imageError("unknown flags %#x", flags)
	}
	if slots == 0 || slots&(slots-1) != 0 || uint64(slots) <= uint64(nBuckets) {
		return nil, imageError("hash table of %d slots for %d buckets: it must be a power of two above the bucket count", slots, nBuckets)
	}
	if longest >= slots {
		return nil, imageError("longest probe %d is not below the %d hash table slots", longest, slots)
	}
	// Each table must lie between the header and the trailer.
	for _, t := range []struct {
		what       string
		off        uint32
		count, per uint64
	}{
		{"bucket table", bucketsOff, uint64(nBuckets), 12},
		{"hash table", tableOff, uint64(slots), 4},
		{"rule set offsets", setsOff, uint64(nSets) + 1, 4},
		{"fixed header set offsets", fixedOff, uint64(nFixed) + 1, 4},
		{"suffix table", suffixesOff, uint64(nSuffixes), 8},
		{"string offsets", stringsOff, uint64(nStrings) + 1, 4},
	} {
		if uint64(t.off) < imageHeaderSize || uint64(t.off)+t.count*t.per > uint64(end) {
			return nil, imageError("%s at offset %d (%d entries of %d bytes) lies outside the image's %d bytes", t.what, t.off, t.count, t.per, len(data))
		}
	}
	ix := &imageIndex{
		data: data, nBuckets: nBuckets, slotMask: slots - 1, longest: longest, nSets: nSets, nFixed: nFixed,
		bucketsOff: int(bucketsOff), tableOff: int(tableOff), setsOff: int(setsOff), fixedOff: int(fixedOff),
		nStrings: nStrings, stringsOff: int(stringsOff),
		noCORS: &compiledCORS{state: bucketNoCORS, source: "bucket"},
	}
	if err := ix.checkBlobs("rule set", ix.setsOff, nSets, end); err != nil {
		return nil, err
	}
	if err := ix.checkBlobs("fixed header set", ix.fixedOff, nFixed, end); err != nil {
		return nil, err
	}
	if err := ix.checkBlobs("string", ix.stringsOff, nStrings, end); err != nil {
		return nil, err
	}
	p := &Policy{img: ix, path: flags&imagePathStyle != 0, strip: flags&imageStrip != 0, vary: flags&imageVary != 0}
	var ps problems
	for i := 0; i < int(nSuffixes); i++ {
		s, err := ix.span("virtual-host suffix", i, int(suffixesOff)+8*i, end)
		if err != nil {
			return nil, err
		}
		if msg := checkSuffix(s); msg != "" {
			ps.config(index("addressing.virtualHostSuffixes", i), msg)
		}
		p.suffixes = append(p.suffixes, asciiLower(s))
	}
	sortSuffixes(p.suffixes)
	if !p.path && len(p.suffixes) == 0 {
		ps.config("addressing", "pathStyle is false and virtualHostSuffixes is empty, so no request could name a bucket")
	}
	if err := ix.checkBuckets(&ps, end); err != nil {
		return nil, err
	}
	if err := ix.checkSets(&ps); err != nil {
		return nil, err
	}
	if err := ix.checkFixed(); err != nil {
		return nil, err
	}
	if err := ps.err(); err != nil {
		return nil, fmt.Errorf("evaluator: image: its configuration is invalid: %w", err)
	}
	switch flags >> 8 {
	case imageUnlistedDefault:
		if defaultSet >= nSets {
			return nil, imageError("the default's rule set %d is not one of the %d rule sets", defaultSet, nSets)
		}
		p.unlisted = &bucketPolicy{compiledCORS: ix.compileSet(defaultSet, "default")}
	case imageUnlistedForward:
	case imageUnlistedNotFound:
		p.unlisted = &bucketPolicy{compiledCORS: &compiledCORS{state: bucketMissing, source: "unlisted"}}
	default:
		p.unlisted = &bucketPolicy{compiledCORS: &compiledCORS{state: bucketNoCORS, source: "unlisted"}}
	}
	if flags>>8 != imageUnlistedDefault && defaultSet != imageNoSet {
		return nil, imageError("a default rule set (%d) without the default's unlisted mode", defaultSet)
	}
	ix.cache = make([]atomic.Pointer[cachedSet], min(imageCacheSets, 1<<bitsFor(nSets)))
	return p, nil
}

// bitsFor is the number of bits a power of two at least n needs.
func bitsFor(n uint32) int {
	b := 0
	for uint64(1)<<b < uint64(n) {
		b++
	}
	return b
}

// sortSuffixes puts the longest first, as compile does.
func sortSuffixes(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && len(s[j]) > len(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// span reads an (offset, length) pair at at and returns the string it names, that of the
// i-th of what.
func (ix *imageIndex) span(what string, i, at, end int) (string, error) {
	off, n := le32(ix.data, at), le32(ix.data, at+4)
	if uint64(off) < imageHeaderSize || uint64(off)+uint64(n) > uint64(end) {
		return "", imageError("%s %d at offset %d, %d bytes long, lies outside the image's %d bytes", what, i, off, n, len(ix.data))
	}
	return ix.data[off : off+n], nil
}

// checkBlobs checks that n blobs' offsets (n+1 of them at at) ascend within the image.
func (ix *imageIndex) checkBlobs(what string, at int, n uint32, end int) error {
	prev := uint32(imageHeaderSize)
	for i := 0; i <= int(n); i++ {
		off := le32(ix.data, at+4*i)
		if off < prev || int(off) > end {
			return imageError("%s %d starts at offset %d, outside [%d, %d]", what, i, off, prev, end)
		}
		prev = off
	}
	return nil
}

// blob returns rule set, fixed header set or string i; checkBlobs has checked its bounds.
func (ix *imageIndex) blob(at int, i uint32) string {
	return ix.data[le32(ix.data, at+4*int(i)):le32(ix.data, at+4*int(i)+4)]
}

// checkBuckets checks every bucket entry: its name is in the image and a valid bucket name,
// its rule set exists, and looking its name up finds it (so names are unique and lookups
// end within the longest probe); and that every slot is empty or names a bucket.
func (ix *imageIndex) checkBuckets(ps *problems, end int) error {
	for i := uint32(0); i <= ix.slotMask; i++ {
		if v := le32(ix.data, ix.tableOff+4*int(i)); v > ix.nBuckets {
			return imageError("hash table slot %d names bucket %d of %d", i, v, ix.nBuckets)
		}
	}
	for i := 0; i < int(ix.nBuckets); i++ {
		e := ix.bucketsOff + 12*i
		name, err := ix.span("the name of bucket", i, e, end)
		if err != nil {
			return err
		}
		if set := le32(ix.data, e+8); set != imageNoSet && set >= ix.nSets {
			return imageError("bucket %q: rule set %d is not one of the %d rule sets", name, set, ix.nSets)
		}
		switch {
		case name == "":
			ps.config(bucketPath(name), "a bucket name cannot be empty")
		case strings.ContainsAny(name, "/?#") || hasCTL(name):
			ps.config(bucketPath(name), "bucket name "+strconv.Quote(name)+` cannot contain "/", "?", "#" or control characters`)
		}
		if found := ix.find(name); found != i {
			if found < 0 {
				return imageError("bucket %q is not in the hash table within %d probes", name, ix.longest+1)
			}
			return imageError("bucket %q is listed twice (entries %d and %d)", name, found, i)
		}
	}
	return nil
}

// find returns the index of the bucket called name, or -1.
func (ix *imageIndex) find(name string) int {
	h := imageHash(name)
	for k := uint32(0); k <= ix.longest; k++ {
		v := le32(ix.data, ix.tableOff+4*int((uint32(h)+k)&ix.slotMask))
		if v == 0 {
			return -1
		}
		e := ix.bucketsOff + 12*int(v-1)
		off, n := le32(ix.data, e), le32(ix.data, e+4)
		if int(n) == len(name) && ix.data[off:off+n] == name {
			return int(v - 1)
		}
	}
	return -1
}

// lookup returns the listed bucket of that name, or nil, in s (so that it costs nothing on
// the heap).
func (ix *imageIndex) lookup(name string, s *decisionScratch) *bucketPolicy {
	i := ix.find(name)
	if i < 0 {
		return nil
	}
	e := ix.bucketsOff + 12*i
	off, n, set := le32(ix.data, e), le32(ix.data, e+4), le32(ix.data, e+8)
	s.bucket = bucketPolicy{name: ix.data[off : off+n], pathName: isPathBucketName(name), compiledCORS: ix.set(set)}
	return &s.bucket
}

// set returns rule set i compiled, from the cache when it is there.
func (ix *imageIndex) set(i uint32) *compiledCORS {
	if i == imageNoSet {
		return ix.noCORS
	}
	slot := &ix.cache[i&uint32(len(ix.cache)-1)]
	if e := slot.Load(); e != nil && e.set == i {
		return e.c
	}
	c := ix.compileSet(i, "bucket")
	slot.Store(&cachedSet{i, c})
	return c
}

// ImageStats describes a policy image.
type ImageStats struct {
	Bytes           int // the image's size
	Buckets         int // listed buckets
	RuleSets        int // distinct rule sets (the default's included)
	FixedHeaderSets int
	Checksum        uint32 // the image's CRC-32C, which names it in logs
}

// ImageStats describes the image a policy was loaded from; ok is false for a policy compiled
// from a configuration.
func (p *Policy) ImageStats() (s ImageStats, ok bool) {
	if p.img == nil {
		return ImageStats{}, false
	}
	return ImageStats{len(p.img.data), int(p.img.nBuckets), int(p.img.nSets), int(p.img.nFixed),
		le32(p.img.data, len(p.img.data)-imageTrailer)}, true
}
