// Command plot draws a CSV time series as a PNG of small multiples: one panel per column,
// sharing the first column as the x axis. `make plot` uses it to turn the soak test's
// samples (build/soak.csv) into docs/soak.png for BENCHMARKS.md.
//
// The CSV's first row names the columns; the first column is the x value (seconds). Rows may
// carry a leading "series" column (a text label such as "serve/envoy-1.33"); each series is
// then drawn in its own colour in every panel.
//
// It lives in the tools module so that its dependency (golang.org/x/image) stays out of the
// product's go.mod.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"sort"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "CSV file to read")
	out := fs.String("out", "", "PNG file to write")
	title := fs.String("title", "", "title drawn above the panels (default: the input file name)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *in == "" || *out == "" {
		_, _ = fmt.Fprintln(stderr, "plot: -in and -out are required")
		return 2
	}
	if *title == "" {
		*title = *in
	}
	d, err := readCSV(*in)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	img := render(d, *title)
	if err := writePNG(*out, img); err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		_ = f.Close() // the encoding error is the one worth reporting
		return fmt.Errorf("plot: %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot: %s: %w", path, err)
	}
	return nil
}

// data is the parsed CSV: for each series label, x values and one y column per name.
type data struct {
	xName   string
	columns []string
	series  []string
	points  map[string][][]float64 // series -> rows of [x, y1, y2, ...]
}

func readCSV(path string) (*data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: a close error loses nothing
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("plot: %s: reading header: %w", path, err)
	}
	hasSeries := len(header) > 0 && header[0] == "series"
	first := 0
	if hasSeries {
		first = 1
	}
	if len(header)-first < 2 {
		return nil, fmt.Errorf("plot: %s: need an x column and at least one y column, got %q", path, header)
	}
	d := &data{xName: header[first], columns: header[first+1:], points: map[string][][]float64{}}
	line := 1
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line++
		if err != nil {
			return nil, fmt.Errorf("plot: %s: line %d: %w", path, line, err)
		}
		label := ""
		if hasSeries {
			label = rec[0]
		}
		row := make([]float64, 0, len(rec)-first)
		for i, s := range rec[first:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return nil, fmt.Errorf("plot: %s: line %d, column %q: %q is not a number", path, line, header[first+i], s)
			}
			row = append(row, v)
		}
		if _, ok := d.points[label]; !ok {
			d.series = append(d.series, label)
		}
		d.points[label] = append(d.points[label], row)
	}
	if len(d.series) == 0 {
		return nil, fmt.Errorf("plot: %s: no data rows", path)
	}
	return d, nil
}

var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff},
	{0xff, 0x7f, 0x0e, 0xff}, {0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff},
}

const (
	panelW, panelH = 900, 220
	marginL        = 90
	marginR        = 20
	marginT        = 30
	marginB        = 30
	titleH         = 30
	legendH        = 20
)

func render(d *data, title string) *image.RGBA {
	w := marginL + panelW + marginR
	h := titleH + legendH + len(d.columns)*(panelH+marginT+marginB)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	text(img, 10, 20, title, color.Black)
	x := 10
	for i, s := range d.series {
		c := palette[i%len(palette)]
		fill(img, image.Rect(x, titleH+6, x+12, titleH+14), c)
		label := s
		if label == "" {
			label = "samples"
		}
		text(img, x+16, titleH+14, label, color.Black)
		x += 30 + 7*len(label)
	}
	xmin, xmax := math.Inf(1), math.Inf(-1)
	for _, rows := range d.points {
		for _, r := range rows {
			xmin, xmax = math.Min(xmin, r[0]), math.Max(xmax, r[0])
		}
	}
	for ci, name := range d.columns {
		top := titleH + legendH + ci*(panelH+marginT+marginB) + marginT
		ymin, ymax := math.Inf(1), math.Inf(-1)
		for _, rows := range d.points {
			for _, r := range rows {
				ymin, ymax = math.Min(ymin, r[ci+1]), math.Max(ymax, r[ci+1])
			}
		}
		if ymin > 0 {
			ymin = 0 // a flat line near its maximum must look flat, not noisy
		}
		if ymax == ymin {
			ymax = ymin + 1
		}
		ymax += (ymax - ymin) * 0.05
		frame := image.Rect(marginL, top, marginL+panelW, top+panelH)
		outline(img, frame, color.Gray{0x80})
		for g := 1; g < 4; g++ {
			y := top + panelH*g/4
			for px := frame.Min.X; px < frame.Max.X; px += 4 {
				img.Set(px, y, color.Gray{0xd0})
			}
		}
		text(img, marginL, top-8, name, color.Black)
		text(img, 4, top+10, human(ymax), color.Gray{0x40})
		text(img, 4, top+panelH, human(ymin), color.Gray{0x40})
		text(img, marginL, top+panelH+16, human(xmin)+" "+d.xName, color.Gray{0x40})
		text(img, marginL+panelW-80, top+panelH+16, human(xmax)+" "+d.xName, color.Gray{0x40})
		for si, s := range d.series {
			rows := append([][]float64(nil), d.points[s]...)
			sort.SliceStable(rows, func(a, b int) bool { return rows[a][0] < rows[b][0] })
			c := palette[si%len(palette)]
			px := func(r []float64) (int, int) {
				fx := (r[0] - xmin) / math.Max(xmax-xmin, 1e-9)
				fy := (r[ci+1] - ymin) / (ymax - ymin)
				return marginL + int(fx*float64(panelW-1)), top + panelH - 1 - int(fy*float64(panelH-1))
			}
			for i := 1; i < len(rows); i++ {
				x0, y0 := px(rows[i-1])
				x1, y1 := px(rows[i])
				line(img, x0, y0, x1, y1, c)
			}
			if len(rows) == 1 {
				x0, y0 := px(rows[0])
				fill(img, image.Rect(x0-1, y0-1, x0+2, y0+2), c)
			}
		}
	}
	return img
}

func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return strconv.FormatFloat(v/1e9, 'f', 2, 64) + "G"
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + "M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a == math.Trunc(a):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func outline(img *image.RGBA, r image.Rectangle, c color.Color) {
	for x := r.Min.X; x < r.Max.X; x++ {
		img.Set(x, r.Min.Y, c)
		img.Set(x, r.Max.Y-1, c)
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		img.Set(r.Min.X, y, c)
		img.Set(r.Max.X-1, y, c)
	}
}

// line draws with Bresenham's algorithm, two pixels thick for legibility.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
