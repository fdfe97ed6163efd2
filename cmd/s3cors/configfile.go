package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/configfile"
	"github.com/s3cors/s3cors/internal/shell"
)

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

// configJSON returns an s3cors configuration file's content as JSON, read by configfile as
// every surface reads it. A YAML syntax error is reported as "invalid YAML: CAUSE", the file
// being named by the caller.
func configJSON(path string, data []byte) ([]byte, error) {
	doc, err := configfile.JSON(path, data)
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
	if msg := configfile.BareDocument(data, doc); msg != "" {
		// validate reads the file as a bucket document only when Detect says it is one
		// (not a YAML one, nor a JSON string of XML): only then is it worth running.
		if configfile.Detect(data) == configfile.KindBucketCORS {
			msg += " (s3cors validate " + shell.Quote(path) + " checks it as it is)"
		}
		return nil, nil, fmt.Errorf("configuration %q: %s", path, msg)
	}
	return nil, nil, err
}
