package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/extproc"
)

// docKind is what a file passed to validate or convert holds.
type docKind string

const (
	kindConfig      docKind = "config"      // a whole s3cors configuration
	kindBucketCORS  docKind = "bucket-cors" // a bare bucket CORS document
	kindUnsupported docKind = ""
)

// detectKind tells an s3cors configuration from a bare bucket CORS document: S3 XML and the
// console's JSON array are bucket documents, a JSON object is a bucket document when it has a
// top-level "CORSRules" member and no "buckets" (with both, it is a configuration with a
// stray key), and anything else (other JSON objects, YAML) is an s3cors configuration, as
// extproc reads it.
func detectKind(data []byte) docKind {
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) == 0 {
		return kindConfig
	}
	switch trimmed[0] {
	case '<', '[':
		return kindBucketCORS
	case '{':
		var top map[string]json.RawMessage
		if err := json.Unmarshal(trimmed, &top); err == nil {
			_, rules := top["CORSRules"]
			_, buckets := top["buckets"]
			if rules && !buckets {
				return kindBucketCORS
			}
		}
	}
	return kindConfig
}

// isEmpty reports a file with nothing but blanks (and a byte-order mark) in it, which YAML
// would read as null and JSON as a syntax error: neither says what is wrong.
func isEmpty(data []byte) bool {
	return len(bytes.TrimLeft(data, " \t\r\n\ufeff")) == 0
}

// notAConfig says why a file given where an s3cors configuration belongs is not one, before
// it is parsed as one: it is empty, or it is a bare bucket CORS document (detectKind), which
// users have from S3 and paste as it is. It returns "" for anything else. The message starts
// "the file", for the caller to name it.
func notAConfig(data []byte) string {
	if isEmpty(data) {
		return `the file is empty: an s3cors configuration is an object with at least "buckets", e.g. {"buckets": {}}`
	}
	if detectKind(data) != kindBucketCORS {
		return ""
	}
	form := formOf(data)
	doc := map[string]string{
		"xml":     `"<CORSConfiguration>...</CORSConfiguration>"`,
		"json":    `{"CORSRules": [...]}`,
		"console": `[...]`,
	}[form]
	return "the file is a bucket CORS document (" + formName(form) + "), not an s3cors configuration: " +
		`put it under a bucket name, {"buckets": {"NAME": ` + doc + "}}"
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

// loadPolicy reads, validates and compiles an s3cors configuration file.
func loadPolicy(path string) (*evaluator.Policy, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading configuration: %w", err)
	}
	if msg := notAConfig(data); msg != "" {
		if !isEmpty(data) {
			msg += " (s3cors validate " + path + " checks it as it is)"
		}
		return nil, nil, fmt.Errorf("configuration %q: %s", path, msg)
	}
	doc, err := configJSON(path, data)
	if err != nil {
		return nil, nil, err
	}
	pol, err := evaluator.Load(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration %q: %w", path, err)
	}
	return pol, doc, nil
}
