// Package extprocd is the process `s3cors extproc` runs: the ext_proc library's server
// (extproc.Server) on a gRPC listener, with what a long-running service needs around it.
//
//   - [New] loads the configuration file (a file that does not load is logged once, with
//     every problem, and returned as a [*ConfigLoadError]) and opens the listeners.
//   - [Daemon.Serve] serves until its context ends: gRPC health (SERVING, then NOT_SERVING
//     when shutdown begins), /metrics, /healthz and /readyz on the optional HTTP listener,
//     then a bounded graceful drain (ShutdownDelay, then DrainTimeout).
//   - The configuration file is watched (fsnotify, on the directory, so that editors'
//     rename-replace and Kubernetes' ConfigMap symlink swap are seen) and reloaded by atomic
//     swap; [Daemon.Reload] reloads it on demand. A file that does not load is logged and
//     counted, and the last good configuration stays live.
//   - Or, with Options.ConfigFrom, the configuration comes from a control plane (s3cors
//     controlplane) over ECDS, as the wasm filter's Envoys get theirs: the plugin
//     configuration of the filter's TypedExtensionConfig, JSON or a compiled policy image.
//     Each one that loads is swapped in and ACKed; one that does not is NACKed, logged and
//     counted, the last good one kept; a broken stream is reopened every second.
//
// Reload: file events settle for 100 ms, then the file's SHA-256 is compared with the live
// one, so a rename-replace or ConfigMap swap that changes nothing is no reload and a
// half-written file is refused, never live. Refusals are counted in
// s3cors_config_reload_errors_total{reason} with s3cors_config_last_reload_successful 0;
// s3cors_config_info{hash} is the sha256sum of the live file; s3cors_decisions_total
// pre-creates only the outcome and reason pairs that can happen.
//
// Shutdown: health turns NOT_SERVING; after ShutdownDelay (about interval × unhealthy_threshold
// of Envoy's health check, so Envoy stops opening streams here first) new streams are refused
// and open ones drain for up to DrainTimeout (15 s, under Kubernetes' 30 s grace), since a
// decorated request's stream lasts until the store answers.
//
// Where it sits: a process package under internal/, the one that may import the extproc
// adapter (depguard in .golangci.yml); cmd/s3cors imports it, nothing else does.
//
// The package installs no signal handler: the command maps SIGINT and SIGTERM to the
// context it passes to Serve and SIGHUP to Reload (cmd/s3cors/extproc.go).
//
// [Metrics] are the Prometheus collectors (every name starts with "s3cors_"): the
// extproc.Observer the server reports decisions, errors and latencies to, and the
// configuration reloads. They live here, not in the library, so that a program embedding
// extproc does not pull in Prometheus.
package extprocd
