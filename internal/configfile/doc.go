// Package configfile reads an s3cors configuration file or document the one way every
// surface reads it: `s3cors validate`, `serve`, `explain`, `convert`, `compile`, `manifest`,
// `controlplane`, and the ext_proc server.
//
// [JSON] turns a file's bytes into the JSON document the evaluator loads. JSON passes
// unchanged (less a byte-order mark); YAML, chosen by the file's extension or, without one
// that says, by a first byte other than '{', is read as YAML 1.2 and written as the JSON that
// says the same: keys as written and in order (a bucket named yes or 0123 keeps its name), a
// key given twice an error, anchors and merge keys within a node budget. A document with
// nothing in it comes back as no bytes, for the evaluator's "empty configuration" problem
// rather than a parser's "unexpected end of input" or YAML's null.
//
// [Detect], [Blank] and [BareDocument] are the advice the commands give about what a file
// is: a bare bucket CORS document (S3 XML, an array of rules, an object with CORSRules)
// where a whole configuration belongs is named as such, in the evaluator's words.
//
// The package imports only the evaluator, the standard library and go.yaml.in/yaml/v3, so
// that reading a file pulls in nothing of gRPC, Prometheus or the file watcher.
package configfile
