// Package demo holds the demo web page of `s3cors serve --demo-listen` (plain HTML, CSS and
// JavaScript, embedded, no build step) and the tiny web font it loads cross-origin.
package demo
