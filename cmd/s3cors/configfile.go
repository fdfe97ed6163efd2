package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
	"github.com/s3cors/s3cors/internal/shell"
)

// docKind is what a file passed to validate or convert holds.
type docKind string

const (
	kindConfig     docKind = "config"      // a whole s3cors configuration
	kindBucketCORS docKind = "bucket-cors" // a bare bucket CORS document
	kindAuto       docKind = "auto"        // --kind auto: detectKind tells
)

// detectKind tells an s3cors configuration from a bare bucket CORS document by what the
// evaluator calls a bare document where a configuration belongs (evaluator.BareDocument): S3
// XML, an array of rules, an object with "CORSRules" and no "buckets". An array that does not
// parse is taken for a bucket document too, for the bucket parser to report its syntax error
// in the form it has. Anything else (other JSON, YAML, a blank file) is an s3cors
// configuration, as the ext_proc server reads it.
func detectKind(data []byte) docKind {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return kindConfig
	}
	switch trimmed[0] {
	case '<', '{', '[':
		if _, _, ok := evaluator.BareDocument(trimmed); ok {
			return kindBucketCORS
		}
		if trimmed[0] == '[' && !json.Valid(trimmed) {
			return kindBucketCORS
		}
	}
	return kindConfig
}

// isEmpty reports a file with nothing but blanks (and a byte-order mark) in it.
func isEmpty(data []byte) bool {
	return len(bytes.TrimLeft(data, " \t\r\n\ufeff")) == 0
}

// bareDocument returns the evaluator's problem for a bare bucket CORS document given where
// an s3cors configuration belongs, or "" when data is not one. data is the file as read
// and doc (may be nil) the JSON it converts to, which tells a YAML bucket document.
func bareDocument(data, doc []byte) string {
	if _, msg, ok := evaluator.BareDocument(data); ok {
		return msg
	}
	if _, msg, ok := evaluator.BareDocument(doc); ok {
		return msg
	}
	return ""
}

// configBuckets returns the names under the top-level "buckets" of a JSON configuration, in
// the order written, and whether there is such a key. It reads what it can of a document
// that may be invalid otherwise, to tell the user which names --bucket takes.
func configBuckets(doc []byte) ([]string, bool) {
	var top struct {
		Buckets json.RawMessage `json:"buckets"`
	}
	if err := json.Unmarshal(doc, &top); err != nil || len(top.Buckets) == 0 {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(top.Buckets))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, true
	}
	var names []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		name, _ := t.(string)
		names = append(names, name)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			break
		}
	}
	return names, true
}

// configJSON returns an s3cors configuration file's content as JSON. YAML is converted the
// way the extproc server converts it, so that every command accepts exactly what the server
// accepts.
func configJSON(path string, data []byte) ([]byte, error) {
	doc, err := extproc.ConfigJSON(path, data)
	if err != nil {
		if cause := errors.Unwrap(err); cause != nil {
			return nil, fmt.Errorf("invalid YAML: %w", cause)
		}
		return nil, err
	}
	return doc, nil
}

// loadPolicy reads, validates and compiles an s3cors configuration file. Its errors are the
// evaluator's, prefixed with the file's name; a bare bucket CORS document also gets the
// command that validates it as what it is.
func loadPolicy(path string) (*evaluator.Policy, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading configuration: %w", err)
	}
	doc, err := configJSON(path, data)
	if err == nil {
		var pol *evaluator.Policy
		if pol, err = evaluator.Load(doc); err == nil {
			return pol, doc, nil
		}
	}
	err = fmt.Errorf("configuration %q: %w", path, err)
	// An XML file is no YAML a converter can be relied on to read, so the file as read is
	// asked first.
	if msg := bareDocument(data, doc); msg != "" {
		// validate reads the file as a bucket document only when detectKind says it is one
		// (not a YAML one, nor a JSON string of XML): only then is it worth running.
		if detectKind(data) == kindBucketCORS {
			msg += " (s3cors validate " + shell.Quote(path) + " checks it as it is)"
		}
		return nil, nil, fmt.Errorf("configuration %q: %s", path, msg)
	}
	return nil, nil, err
}
