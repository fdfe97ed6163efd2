package demo

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
)

//go:embed page
var page embed.FS

// Files are the page's static assets (index.html, app.js, style.css).
func Files() fs.FS {
	sub, err := fs.Sub(page, "page")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time; a bad path is a programming error
	}
	return sub
}

// Handler serves the demo page. gatewayURL is the gateway's base URL as the browser reaches
// it (e.g. http://127.0.0.1:8080), debugURL its debug listener's (e.g.
// http://127.0.0.1:8082), where the page reads the explain and stats endpoints; the page
// learns both from /config.js.
func Handler(gatewayURL, debugURL string) http.Handler {
	files := http.FileServerFS(Files())
	cfg, _ := json.Marshal(map[string]string{"gateway": gatewayURL, "debug": debugURL})
	configJS := fmt.Appendf(nil, "window.S3CORS = %s;\n", cfg)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/config.js" {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
			_, _ = w.Write(configJS)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// Objects the demo seeds into each bucket of the embedded store.
const (
	HelloKey = "hello.txt"
	FontKey  = "pixel.ttf"
)

// Putter stores an object; s3mem.Store.Put is one.
type Putter func(bucket, key string, body []byte, contentType string, meta map[string]string) error

// Seed puts hello.txt and the pixel font into every bucket, so each demo action finds its
// object.
func Seed(put Putter, buckets []string) error {
	font := Font()
	for _, b := range buckets {
		hello := fmt.Appendf(nil, "Hello from bucket %s, served by the embedded store behind the s3cors filter.\n", b)
		if err := put(b, HelloKey, hello, "text/plain; charset=utf-8", map[string]string{"author": "s3cors demo"}); err != nil {
			return fmt.Errorf("demo: seeding bucket %q: %w", b, err)
		}
		if err := put(b, FontKey, font, "font/ttf", nil); err != nil {
			return fmt.Errorf("demo: seeding bucket %q: %w", b, err)
		}
	}
	return nil
}
