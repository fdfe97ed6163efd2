package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/s3cors/s3cors/evaluator"
	"github.com/s3cors/s3cors/internal/explain"
	"github.com/s3cors/s3cors/internal/gateway"
	"github.com/s3cors/s3cors/wasmhost"
)

type bannerInfo struct {
	configPath, gateway, debug, demo, upstream string
	profile                                    wasmhost.Profile
	workers                                    int
	policy                                     *evaluator.Policy
}

// printBanner tells a newcomer what is running and what to try.
func printBanner(w io.Writer, b bannerInfo) {
	var s strings.Builder
	fmt.Fprintf(&s, "s3cors gateway on %s\n", b.gateway)
	fmt.Fprintf(&s, "  filter:   s3cors.wasm in wasmhost (%s, %d worker(s)), configuration %s\n", b.profile, b.workers, b.configPath)
	fmt.Fprintf(&s, "  upstream: %s\n", b.upstream)
	if b.debug != "" {
		fmt.Fprintf(&s, "  debug:    %s (stats, explain; never on the gateway's address)\n", b.debug)
	}
	if b.demo != "" {
		fmt.Fprintf(&s, "  demo:     open %s in a browser (a different origin from the gateway)\n", b.demo)
	}
	cfg := b.policy.Config()
	allowed, denied := tryRequests(b.policy, b.demo)
	s.WriteString("\nTry:\n")
	if allowed != nil {
		fmt.Fprintf(&s, "  # an allowed preflight: 200 and CORS headers, answered by the filter\n  %s\n", curlLine(b.gateway, cfg, allowed))
	}
	if denied != nil {
		fmt.Fprintf(&s, "  # a denied preflight: S3's 403 XML error\n  %s\n", curlLine(b.gateway, cfg, denied))
		fmt.Fprintf(&s, "  # why it is denied, rule by rule\n  %s\n", explainLine(b.configPath, b.gateway, cfg, denied))
	}
	if b.debug != "" {
		fmt.Fprintf(&s, "  # counters: answered at the proxy, reached the store, filter metrics\n  curl -s %s%s\n", b.debug, gateway.StatsPath)
	}
	s.WriteString("\nPress Ctrl-C to stop.\n")
	_, _ = io.WriteString(w, s.String())
}

// addressFor is the authority and path of bucket/key, path style when the configuration
// allows it.
func addressFor(cfg *evaluator.Config, bucket, key string) (string, string) {
	return explain.Address(cfg, bucket, key)
}

// tryRequests finds, in the configuration, a preflight S3 allows and one it denies, so the
// banner's examples are true for the configuration being served.
func tryRequests(pol *evaluator.Policy, demoOrigin string) (allowed, denied *evaluator.Request) {
	cfg := pol.Config()
	var d evaluator.Decision
	try := func(bucket, origin, method string) *evaluator.Request {
		auth, path := addressFor(cfg, bucket, "notes/hello.txt")
		r := &evaluator.Request{Method: http.MethodOptions, Authority: auth, Path: path,
			Origin: origin, HasOrigin: true, RequestMethod: method, HasRequestMethod: true}
		pol.Evaluate(r, &d)
		return r
	}
	for _, name := range cfg.BucketOrder {
		b := cfg.Buckets[name]
		if b == nil || len(b.Rules) == 0 {
			continue
		}
		rule := b.Rules[0]
		origins := append([]string{}, rule.AllowedOrigins...)
		if demoOrigin != "" {
			origins = append([]string{demoOrigin}, origins...)
		}
		for _, o := range origins {
			if len(rule.AllowedMethods) == 0 {
				break
			}
			r := try(name, exampleOrigin(o), rule.AllowedMethods[0])
			if d.Outcome == evaluator.Reply && d.Status == http.StatusOK {
				allowed = r
				break
			}
		}
		if allowed == nil {
			continue
		}
		if r := try(name, "https://denied.example", allowed.RequestMethod); d.Status != http.StatusOK {
			denied = r
		}
		break
	}
	if denied == nil {
		for _, name := range cfg.BucketOrder {
			if r := try(name, "https://denied.example", http.MethodPut); d.Outcome == evaluator.Reply && d.Status != http.StatusOK {
				denied = r
				break
			}
		}
	}
	return allowed, denied
}

// exampleOrigin turns an AllowedOrigin pattern into an origin it matches.
func exampleOrigin(pattern string) string {
	switch {
	case pattern == "*":
		return "https://example.com"
	case strings.Contains(pattern, "*"):
		return strings.Replace(pattern, "*", "www", 1)
	}
	return pattern
}

func curlLine(gw string, cfg *evaluator.Config, r *evaluator.Request) string {
	target, host := requestURL(gw, cfg, r)
	s := "curl -i -X OPTIONS " + target
	if host != "" {
		s += " -H 'Host: " + host + "'"
	}
	s += " -H 'Origin: " + r.Origin + "' -H 'Access-Control-Request-Method: " + r.RequestMethod + "'"
	return s
}

func explainLine(configPath, gw string, cfg *evaluator.Config, r *evaluator.Request) string {
	target, host := requestURL(gw, cfg, r)
	if host != "" {
		target = "http://" + host + r.Path
	}
	return fmt.Sprintf("%s explain --config %s --url %s --method OPTIONS --origin %s --request-method %s",
		programName(), configPath, target, r.Origin, r.RequestMethod)
}

// programName is how the user ran this binary (build/s3cors under `make run`), so the
// banner's command lines can be pasted as they are; "s3cors" when that is not known.
func programName() string {
	if len(os.Args) > 0 && filepath.Base(os.Args[0]) == "s3cors" {
		return os.Args[0]
	}
	return "s3cors"
}

// requestURL is where to send r on the gateway; for a virtual-hosted request the Host header
// to set is returned too, since *.localhost names may not resolve everywhere.
func requestURL(gw string, cfg *evaluator.Config, r *evaluator.Request) (target, host string) {
	if cfg.Addressing.PathStyle {
		return gw + r.Path, ""
	}
	port := gw[strings.LastIndex(gw, ":"):]
	return gw + r.Path, r.Authority + port
}
