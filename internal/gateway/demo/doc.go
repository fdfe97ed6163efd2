// Package demo holds the demo web page of `s3cors serve --demo-listen` (plain HTML, CSS and
// JavaScript, embedded, no build step) and the tiny web font it loads cross-origin.
//
// Where it sits: under internal/gateway, standard library only; cmd/s3cors serves the page
// and seeds the embedded store with its objects.
package demo
