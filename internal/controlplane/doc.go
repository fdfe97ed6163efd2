// Package controlplane is the s3cors control plane: the S3 bucket cors subresource
// (PutBucketCors, GetBucketCors, DeleteBucketCors) for stores that lack it, checked with AWS
// Signature Version 4, kept durably in one file, and pushed to every connected Envoy as the
// wasm filter's configuration over ECDS (extension config discovery).
//
// The configuration file is the seed. Its "buckets" are the buckets the control plane knows
// (any other answers NoSuchBucket) and their rules until the API changes them; every other
// member (addressing, unlistedBuckets, vary, ...) is used as written. A bucket the API has
// changed keeps the API's rules across restarts, until the seed's entry for that bucket is
// itself edited: the newer intent wins, so a GitOps commit to a bucket overrides an earlier
// API change and an API change overrides the file it was made against (see Merge).
//
// Every acknowledged change is on disk first: the state file is replaced atomically (write a
// temporary file, fsync, rename, fsync the directory) before the 200 or 204 is sent, and only
// then is the new configuration pushed. A configuration over ImageThreshold (256 KiB, about
// 600 buckets) is pushed as its compiled policy image, which each Envoy VM uses in place
// instead of parsing the JSON. s3cors_controlplane_xds_ack_seconds times each push to each
// Envoy's ACK: Envoy sends it once its main thread has built the new filter, a throw-away
// canary VM included; its workers switch right after.
//
// Where it sits: the process package behind `s3cors controlplane`, under internal/. It
// imports the evaluator (the seed and every change are validated by it), never an adapter
// or wasmhost; what it pushes is the wasm filter's configuration, so it need not import the
// filter. cmd/s3cors runs it; the ext_proc server (internal/extprocd) can take its
// configuration from it over ECDS, without importing it.
package controlplane
