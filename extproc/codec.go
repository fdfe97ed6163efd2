package extproc

import (
	"google.golang.org/grpc"

	"github.com/s3cors/s3cors/extproc/internal/wire"
)

// ServerCodecOption returns the grpc.ServerOption that lets a grpc.Server send the server's
// pre-encoded answers as they are and hand it the requests' wire bytes (see the package
// comment, "Wire codec"). Without it the server works the same, at the cost of gRPC's proto
// codec: every answer is copied once more, and every request decoded into generated messages.
// It replaces the codec of every service on that grpc.Server, leaving their messages to gRPC's
// proto codec, so health and reflection services registered beside the ext_proc server work
// as before. `s3cors extproc` installs it.
func ServerCodecOption() grpc.ServerOption { return wire.ServerCodecOption() }
