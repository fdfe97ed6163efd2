package main

import (
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/spf13/cobra"

	"github.com/s3cors/s3cors/internal/configfile"
	"github.com/s3cors/s3cors/internal/controlplane"
)

func newControlplaneCmd() *cobra.Command {
	var o controlplane.RunOptions
	var configPath, credentialsPath, statePath, stateBucket, stateEndpoint, stateKey, logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "controlplane --config FILE --credentials FILE [--state FILE] [--listen ADDR] [--xds-listen ADDR]",
		Short: "Serve PutBucketCors, GetBucketCors and DeleteBucketCors, and push the rules to Envoy over xDS",
		Long: `Controlplane gives a store without the bucket CORS API one: PUT, GET and DELETE
/{bucket}?cors on --listen, answered as S3 answers them, for the AWS CLI, the SDKs and
Terraform. Requests must carry an AWS Signature Version 4 made with a key from --credentials:

  {"keys": [{"accessKeyId": "AKIA...", "secretAccessKey": "...", "buckets": ["website"]}]}

(a key manages the buckets it lists, or every bucket with "*").

The --config file (an s3cors configuration, JSON or YAML) is the seed: its buckets are the
buckets the control plane knows (others answer NoSuchBucket) and their rules until the API
changes them. A change is written to --state (replaced atomically, fsynced) before it is
acknowledged (with --state-bucket: written as an object of the store, conditionally, so that
replicas sharing it never lose each other's changes; each re-reads it every --poll), and
outlives restarts until the seed's entry for that bucket is edited: then the
seed wins again. Every change is pushed at once to each Envoy connected to --xds-listen by
ECDS, as the wasm filter's configuration (the merged s3cors document, or over 256 KiB its
compiled policy image); --module is the file those Envoys load the module from.

--metrics-listen serves /metrics (Prometheus) and /healthz. SIGINT or SIGTERM stops it;
Envoys keep the last rules they got and reconnect.`,
		Example: `  s3cors controlplane --config cors.yaml --credentials keys.json --state /var/lib/s3cors/state.json
  aws s3api put-bucket-cors --endpoint-url http://127.0.0.1:8090 --bucket website --cors-configuration file://cors.json`,
		Args: exactArgs(0, "no arguments (flags only)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usageErrorf("controlplane: --config is required")
			}
			if credentialsPath == "" {
				return usageErrorf("controlplane: --credentials is required")
			}
			if statePath == "" {
				return usageErrorf("controlplane: --state cannot be empty")
			}
			logger, err := newLogger(cmd.ErrOrStderr(), "controlplane", logLevel, logFormat)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(configPath)
			if err != nil {
				return fmt.Errorf("controlplane: --config: %w", err)
			}
			seed, err := configfile.JSON(configPath, data)
			if err != nil {
				return fmt.Errorf("controlplane: --config: %w", err)
			}
			cdata, err := os.ReadFile(credentialsPath)
			if err != nil {
				return fmt.Errorf("controlplane: --credentials: %w", err)
			}
			keys, err := controlplane.ParseCredentials(cdata)
			if err != nil {
				return fmt.Errorf("%w (in %q)", err, credentialsPath)
			}
			o.Seed, o.Keys, o.Logger = seed, keys, logger
			o.Store = &controlplane.FileStore{Path: statePath}
			if stateBucket != "" {
				if stateEndpoint == "" {
					return usageErrorf("controlplane: --state-bucket needs --state-endpoint")
				}
				id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
				if id == "" || secret == "" {
					return usageErrorf("controlplane: --state-bucket: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the store's credentials")
				}
				o.Store = &controlplane.ObjectStore{
					Client: s3.New(s3.Options{
						BaseEndpoint: aws.String(stateEndpoint), UsePathStyle: true, Region: o.Region,
						Credentials: credentials.NewStaticCredentialsProvider(id, secret, ""),
					}),
					Bucket: stateBucket, Key: stateKey,
				}
				if o.Poll <= 0 {
					return usageErrorf("controlplane: --poll %s: want a positive duration with --state-bucket", o.Poll)
				}
			} else {
				o.Poll = 0
			}
			return controlplane.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "s3cors configuration file, JSON or YAML: the seed (required)")
	f.StringVar(&credentialsPath, "credentials", "", "JSON file of the access keys allowed to change bucket CORS (required)")
	f.StringVar(&statePath, "state", "s3cors-state.json", "file keeping every acknowledged change (replaced atomically)")
	f.StringVar(&stateBucket, "state-bucket", "", "keep the state in this bucket of the S3 store instead of --state, with conditional writes, so replicas can share it (credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
	f.StringVar(&stateEndpoint, "state-endpoint", "", "the S3 store's URL for --state-bucket, e.g. http://minio:9000 (path style)")
	f.StringVar(&stateKey, "state-key", "s3cors/controlplane-state.json", "the object holding the state in --state-bucket")
	f.DurationVar(&o.Poll, "poll", time.Second, "with --state-bucket: how often to read the changes other replicas made")
	f.StringVar(&o.Listen, "listen", controlplane.DefaultListen, "HTTP address of the S3 API (PUT/GET/DELETE /{bucket}?cors)")
	f.StringVar(&o.XDSListen, "xds-listen", controlplane.DefaultXDSListen, "gRPC address Envoys fetch the filter configuration from (ECDS)")
	f.StringVar(&o.MetricsListen, "metrics-listen", "127.0.0.1:9091", `HTTP address for /metrics and /healthz ("" for none)`)
	f.StringVar(&o.Region, "region", "us-east-1", "the region clients sign requests for")
	f.StringVar(&o.Plugin.Module, "module", "/etc/envoy/s3cors.wasm", "path of s3cors.wasm on the Envoys (their vm_config)")
	f.StringVar(&o.Plugin.Name, "filter-name", "s3cors", "the ECDS resource: the name of the Envoy HTTP filter that discovers it")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}
