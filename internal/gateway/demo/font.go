package demo

import (
	"bytes"
	"encoding/binary"
	"sort"
	"strings"
	"sync"
	"unicode/utf16"
)

// FontFamily is the family name inside the demo font.
const FontFamily = "S3CORS Pixel"

// Font returns a tiny TrueType font (about 15 KB): a 5×7 pixel alphabet (A-Z, digits and a
// little punctuation; lower case is drawn as upper case). It is generated here, from the bitmaps
// below, so the repository ships no third-party font and its provenance is this file. Its blocky
// look makes it obvious on the demo page whether the browser used it or fell back.
func Font() []byte {
	fontOnce.Do(func() { fontBytes = buildFont() })
	return bytes.Clone(fontBytes)
}

var (
	fontOnce  sync.Once
	fontBytes []byte
)

// glyphBitmaps are 7 rows of 5 columns, top row first; '#' is ink.
var glyphBitmaps = map[rune][7]string{
	'A':  {".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'B':  {"####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."},
	'C':  {".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."},
	'D':  {"####.", "#...#", "#...#", "#...#", "#...#", "#...#", "####."},
	'E':  {"#####", "#....", "#....", "####.", "#....", "#....", "#####"},
	'F':  {"#####", "#....", "#....", "####.", "#....", "#....", "#...."},
	'G':  {".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"},
	'H':  {"#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"},
	'I':  {".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'J':  {"..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."},
	'K':  {"#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"},
	'L':  {"#....", "#....", "#....", "#....", "#....", "#....", "#####"},
	'M':  {"#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"},
	'N':  {"#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"},
	'O':  {".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'P':  {"####.", "#...#", "#...#", "####.", "#....", "#....", "#...."},
	'Q':  {".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"},
	'R':  {"####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"},
	'S':  {".####", "#....", "#....", ".###.", "....#", "....#", "####."},
	'T':  {"#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."},
	'U':  {"#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."},
	'V':  {"#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."},
	'W':  {"#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."},
	'X':  {"#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"},
	'Y':  {"#...#", "#...#", ".#.#.", "..#..", "..#..", "..#..", "..#.."},
	'Z':  {"#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"},
	'0':  {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},
	'1':  {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},
	'2':  {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},
	'3':  {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},
	'4':  {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},
	'5':  {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},
	'6':  {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},
	'7':  {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},
	'8':  {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},
	'9':  {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},
	'!':  {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."},
	'.':  {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."},
	',':  {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."},
	':':  {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."},
	'-':  {".....", ".....", ".....", "#####", ".....", ".....", "....."},
	'?':  {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."},
	'/':  {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."},
	'\'': {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."},
}

// Font metrics, in font units: each pixel is 100 units, a glyph is 5 pixels plus one of
// spacing on each side's half.
const (
	unitsPerEm = 1000
	pixel      = 100
	advance    = 600
	leftPad    = 50
	ascender   = 800
	descender  = -200
)

type point struct{ x, y int16 }

type glyph struct {
	contours [][]point
	advance  uint16
}

func (g glyph) bbox() (xMin, yMin, xMax, yMax int16) {
	first := true
	for _, c := range g.contours {
		for _, p := range c {
			if first {
				xMin, yMin, xMax, yMax = p.x, p.y, p.x, p.y
				first = false
				continue
			}
			xMin, yMin = min(xMin, p.x), min(yMin, p.y)
			xMax, yMax = max(xMax, p.x), max(yMax, p.y)
		}
	}
	return
}

// square is one pixel: a clockwise contour, as TrueType wants for filled outlines.
func square(x0, y0, size int16) []point {
	return []point{{x0, y0}, {x0, y0 + size}, {x0 + size, y0 + size}, {x0 + size, y0}}
}

func bitmapGlyph(rows [7]string) glyph {
	g := glyph{advance: advance}
	for r, row := range rows {
		for c, ch := range row {
			if ch == '#' {
				g.contours = append(g.contours, square(int16(leftPad+c*pixel), int16((6-r)*pixel), pixel))
			}
		}
	}
	return g
}

// notdef is the customary hollow box.
func notdef() glyph {
	outer := []point{{50, 0}, {50, 700}, {550, 700}, {550, 0}}
	inner := []point{{100, 50}, {500, 50}, {500, 650}, {100, 650}} // counter-clockwise: a hole
	return glyph{contours: [][]point{outer, inner}, advance: advance}
}

type be struct{ bytes.Buffer }

func (b *be) u8(v uint8)   { b.WriteByte(v) }
func (b *be) u16(v uint16) { _ = binary.Write(&b.Buffer, binary.BigEndian, v) }
func (b *be) i16(v int16)  { _ = binary.Write(&b.Buffer, binary.BigEndian, v) }
func (b *be) u32(v uint32) { _ = binary.Write(&b.Buffer, binary.BigEndian, v) }
func (b *be) i64(v int64)  { _ = binary.Write(&b.Buffer, binary.BigEndian, v) }

func buildFont() []byte {
	// Glyph order: .notdef, space, then the bitmaps by code point.
	runes := make([]rune, 0, len(glyphBitmaps))
	for r := range glyphBitmaps {
		runes = append(runes, r)
	}
	sort.Slice(runes, func(i, j int) bool { return runes[i] < runes[j] })
	glyphs := []glyph{notdef(), {advance: advance}}
	cmap := map[rune]uint16{' ': 1}
	for _, r := range runes {
		cmap[r] = uint16(len(glyphs))
		glyphs = append(glyphs, bitmapGlyph(glyphBitmaps[r]))
	}
	for _, r := range runes {
		if lower := []rune(strings.ToLower(string(r)))[0]; lower != r {
			cmap[lower] = cmap[r]
		}
	}

	var glyf be
	loca := make([]uint32, 0, len(glyphs)+1)
	var maxPoints, maxContours int
	var fxMin, fyMin, fxMax, fyMax int16
	for i, g := range glyphs {
		loca = append(loca, uint32(glyf.Len()))
		if len(g.contours) == 0 {
			continue
		}
		xMin, yMin, xMax, yMax := g.bbox()
		if i == 0 {
			fxMin, fyMin, fxMax, fyMax = xMin, yMin, xMax, yMax
		}
		fxMin, fyMin, fxMax, fyMax = min(fxMin, xMin), min(fyMin, yMin), max(fxMax, xMax), max(fyMax, yMax)
		glyf.i16(int16(len(g.contours)))
		glyf.i16(xMin)
		glyf.i16(yMin)
		glyf.i16(xMax)
		glyf.i16(yMax)
		n := 0
		for _, c := range g.contours {
			n += len(c)
			glyf.u16(uint16(n - 1))
		}
		maxPoints, maxContours = max(maxPoints, n), max(maxContours, len(g.contours))
		glyf.u16(0) // no instructions
		for range n {
			glyf.u8(0x01) // on-curve, x and y as int16 deltas
		}
		var prev point
		for _, c := range g.contours {
			for _, p := range c {
				glyf.i16(p.x - prev.x)
				prev.x = p.x
			}
		}
		prev = point{}
		for _, c := range g.contours {
			for _, p := range c {
				glyf.i16(p.y - prev.y)
				prev.y = p.y
			}
		}
		for glyf.Len()%4 != 0 {
			glyf.u8(0)
		}
	}
	loca = append(loca, uint32(glyf.Len()))

	tables := map[string][]byte{}

	var head be
	head.u32(0x00010000) // version
	head.u32(0x00010000) // fontRevision 1.0
	head.u32(0)          // checkSumAdjustment, set below
	head.u32(0x5F0F3CF5) // magic
	head.u16(0x000B)     // baseline at y=0, lsb at x=0, integer ppem
	head.u16(unitsPerEm)
	head.i64(3849638400) // created: 2026-01-01, seconds since 1904; fixed for reproducibility
	head.i64(3849638400) // modified
	head.i16(fxMin)
	head.i16(fyMin)
	head.i16(fxMax)
	head.i16(fyMax)
	head.u16(0) // macStyle
	head.u16(8) // lowestRecPPEM
	head.i16(2) // fontDirectionHint
	head.i16(1) // indexToLocFormat: long offsets
	head.i16(0) // glyphDataFormat
	tables["head"] = head.Bytes()

	var hhea be
	hhea.u32(0x00010000)
	hhea.i16(ascender)
	hhea.i16(descender)
	hhea.i16(0) // lineGap
	hhea.u16(advance)
	minLSB, minRSB, maxExtent := int16(0), int16(0), int16(0)
	for i, g := range glyphs {
		if len(g.contours) == 0 {
			continue
		}
		xMin, _, xMax, _ := g.bbox()
		lsb, rsb, ext := xMin, int16(g.advance)-xMax, xMax
		if i == 0 {
			minLSB, minRSB, maxExtent = lsb, rsb, ext
		}
		minLSB, minRSB, maxExtent = min(minLSB, lsb), min(minRSB, rsb), max(maxExtent, ext)
	}
	hhea.i16(minLSB)
	hhea.i16(minRSB)
	hhea.i16(maxExtent)
	hhea.i16(1) // caretSlopeRise
	hhea.i16(0) // caretSlopeRun
	hhea.i16(0) // caretOffset
	for range 4 {
		hhea.i16(0)
	}
	hhea.i16(0) // metricDataFormat
	hhea.u16(uint16(len(glyphs)))
	tables["hhea"] = hhea.Bytes()

	var maxp be
	maxp.u32(0x00010000)
	maxp.u16(uint16(len(glyphs)))
	maxp.u16(uint16(maxPoints))
	maxp.u16(uint16(maxContours))
	maxp.u16(0) // maxCompositePoints
	maxp.u16(0) // maxCompositeContours
	maxp.u16(2) // maxZones
	for range 8 {
		maxp.u16(0) // twilight points, storage, function defs, instruction defs, stack, instructions, components, depth
	}
	tables["maxp"] = maxp.Bytes()

	var hmtx be
	for _, g := range glyphs {
		hmtx.u16(g.advance)
		xMin, _, _, _ := g.bbox()
		hmtx.i16(xMin)
	}
	tables["hmtx"] = hmtx.Bytes()

	var locaT be
	for _, o := range loca {
		locaT.u32(o)
	}
	tables["loca"] = locaT.Bytes()
	tables["glyf"] = glyf.Bytes()
	tables["cmap"] = cmapTable(cmap)
	tables["name"] = nameTable()
	tables["OS/2"] = os2Table(cmap)

	var post be
	post.u32(0x00030000) // version 3: no glyph names
	post.u32(0)          // italicAngle
	post.i16(-100)       // underlinePosition
	post.i16(50)         // underlineThickness
	post.u32(1)          // isFixedPitch
	for range 4 {
		post.u32(0)
	}
	tables["post"] = post.Bytes()

	return assemble(tables)
}

func cmapTable(m map[rune]uint16) []byte {
	codes := make([]int, 0, len(m))
	for r := range m {
		codes = append(codes, int(r))
	}
	sort.Ints(codes)
	type segment struct{ start, end, delta uint16 }
	var segs []segment
	for _, c := range codes {
		gid := m[rune(c)]
		delta := uint16(int(gid) - c)
		if n := len(segs); n > 0 && int(segs[n-1].end)+1 == c && segs[n-1].delta == delta {
			segs[n-1].end = uint16(c)
			continue
		}
		segs = append(segs, segment{uint16(c), uint16(c), delta})
	}
	segs = append(segs, segment{0xFFFF, 0xFFFF, 1})

	segCount := len(segs)
	searchRange, entrySelector := 1, 0
	for searchRange*2 <= segCount {
		searchRange *= 2
		entrySelector++
	}
	searchRange *= 2

	var sub be
	sub.u16(4) // format
	sub.u16(uint16(16 + 8*segCount))
	sub.u16(0) // language
	sub.u16(uint16(segCount * 2))
	sub.u16(uint16(searchRange))
	sub.u16(uint16(entrySelector))
	sub.u16(uint16(segCount*2 - searchRange))
	for _, s := range segs {
		sub.u16(s.end)
	}
	sub.u16(0) // reservedPad
	for _, s := range segs {
		sub.u16(s.start)
	}
	for _, s := range segs {
		sub.u16(s.delta)
	}
	for range segs {
		sub.u16(0) // idRangeOffset
	}

	var t be
	t.u16(0) // version
	t.u16(2) // two encoding records sharing one subtable
	t.u16(0) // Unicode platform
	t.u16(3) // Unicode BMP
	t.u32(20)
	t.u16(3) // Windows platform
	t.u16(1) // Unicode BMP
	t.u32(20)
	t.Write(sub.Bytes())
	return t.Bytes()
}

func nameTable() []byte {
	names := []struct {
		id   uint16
		text string
	}{
		{0, "Generated by s3cors (internal/gateway/demo/font.go); public domain."},
		{1, FontFamily},
		{2, "Regular"},
		{3, "s3cors: " + FontFamily + " Regular: 1.000"},
		{4, FontFamily + " Regular"},
		{5, "Version 1.000"},
		{6, "S3CORSPixel-Regular"},
	}
	var strs be
	var recs be
	for _, n := range names {
		u := utf16.Encode([]rune(n.text))
		recs.u16(3)      // Windows
		recs.u16(1)      // Unicode BMP
		recs.u16(0x0409) // en-US
		recs.u16(n.id)
		recs.u16(uint16(2 * len(u)))
		recs.u16(uint16(strs.Len()))
		for _, c := range u {
			strs.u16(c)
		}
	}
	var t be
	t.u16(0)
	t.u16(uint16(len(names)))
	t.u16(uint16(6 + recs.Len()))
	t.Write(recs.Bytes())
	t.Write(strs.Bytes())
	return t.Bytes()
}

func os2Table(m map[rune]uint16) []byte {
	first, last := rune(0xFFFF), rune(0)
	for r := range m {
		first, last = min(first, r), max(last, r)
	}
	var t be
	t.u16(4)       // version
	t.i16(advance) // xAvgCharWidth
	t.u16(400)     // usWeightClass
	t.u16(5)       // usWidthClass
	t.u16(0)       // fsType: installable
	for _, v := range []int16{650, 700, 0, 140, 650, 700, 0, 480, 50, 250} {
		t.i16(v) // sub/superscript sizes and offsets, strikeout size and position
	}
	t.i16(0) // sFamilyClass
	for range 10 {
		t.u8(0) // panose
	}
	t.u32(1) // ulUnicodeRange1: Basic Latin
	t.u32(0)
	t.u32(0)
	t.u32(0)
	t.Write([]byte("S3CR")) // achVendID
	t.u16(0x0040)           // fsSelection: REGULAR
	t.u16(uint16(first))
	t.u16(uint16(last))
	t.i16(ascender)
	t.i16(descender)
	t.i16(0)          // sTypoLineGap
	t.u16(ascender)   // usWinAscent
	t.u16(-descender) // usWinDescent
	t.u32(1)          // ulCodePageRange1: Latin 1
	t.u32(0)
	t.i16(500) // sxHeight
	t.i16(700) // sCapHeight
	t.u16(0)   // usDefaultChar
	t.u16(' ') // usBreakChar
	t.u16(1)   // usMaxContext
	return t.Bytes()
}

func checksum(b []byte) uint32 {
	var sum uint32
	for i := 0; i < len(b); i += 4 {
		var w [4]byte
		copy(w[:], b[i:])
		sum += binary.BigEndian.Uint32(w[:])
	}
	return sum
}

// assemble writes the table directory and the tables, 4-byte aligned, and sets head's
// checkSumAdjustment.
func assemble(tables map[string][]byte) []byte {
	tags := make([]string, 0, len(tables))
	for tag := range tables {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	n := len(tags)
	searchRange, entrySelector := 1, 0
	for searchRange*2 <= n {
		searchRange *= 2
		entrySelector++
	}
	var out be
	out.u32(0x00010000)
	out.u16(uint16(n))
	out.u16(uint16(searchRange * 16))
	out.u16(uint16(entrySelector))
	out.u16(uint16(n*16 - searchRange*16))
	offset := 12 + 16*n
	headOffset := 0
	for _, tag := range tags {
		data := tables[tag]
		out.WriteString(tag)
		out.u32(checksum(data))
		out.u32(uint32(offset))
		out.u32(uint32(len(data)))
		if tag == "head" {
			headOffset = offset
		}
		offset += (len(data) + 3) &^ 3
	}
	for _, tag := range tags {
		out.Write(tables[tag])
		for out.Len()%4 != 0 {
			out.u8(0)
		}
	}
	b := out.Bytes()
	binary.BigEndian.PutUint32(b[headOffset+8:], 0xB1B0AFBA-checksum(b))
	return b
}
