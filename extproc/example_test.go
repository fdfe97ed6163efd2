package extproc_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/s3cors/s3cors/extproc"
)

// A server built from a configuration, registered in a grpc.Server on a loopback port, and
// asked, as Envoy asks it, about a preflight: it answers at once with S3's reply.
func Example() {
	policy, err := extproc.LoadConfig("cors.yaml", []byte(`
buckets:
  site:
    CORSRules:
      - AllowedOrigins: ["https://app.example.com"]
        AllowedMethods: [GET, PUT]
        MaxAgeSeconds: 600
`))
	if err != nil {
		log.Fatal(err)
	}
	holder := extproc.NewPolicyHolder(policy) // Store a new policy here to reload
	gs := grpc.NewServer(extproc.ServerCodecOption())
	extprocv3.RegisterExternalProcessorServer(gs, extproc.NewServer(holder, extproc.ServerOptions{}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	defer gs.Stop()

	// Envoy's side: one stream per HTTP request, opened with the request headers.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	stream, err := extprocv3.NewExternalProcessorClient(conn).Process(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	var hs []*corev3.HeaderValue
	for _, kv := range [][2]string{
		{":method", "OPTIONS"}, {":authority", "store.local"}, {":path", "/site/index.html"},
		{"origin", "https://app.example.com"}, {"access-control-request-method", "PUT"},
	} {
		hs = append(hs, &corev3.HeaderValue{Key: kv[0], RawValue: []byte(kv[1])})
	}
	if err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true},
	}}); err != nil {
		log.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		log.Fatal(err)
	}

	reply := resp.GetImmediateResponse()
	fmt.Println("status", int32(reply.GetStatus().GetCode()), reply.GetDetails())
	for _, h := range reply.GetHeaders().GetSetHeaders() {
		if key := h.GetHeader().GetKey(); strings.HasPrefix(key, "access-control-") {
			fmt.Printf("%s: %s\n", key, h.GetHeader().GetRawValue())
		}
	}
	// Output:
	// status 200 s3cors_preflight_allowed
	// access-control-allow-origin: https://app.example.com
	// access-control-allow-methods: GET, PUT
	// access-control-max-age: 600
	// access-control-allow-credentials: true
}
