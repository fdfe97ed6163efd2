//go:build !wasip1

package abi

// Register installs the module's plugin behind the exported callbacks. Outside a wasm build
// there are no exports, so it does nothing.
func Register(Plugin) {}

// ProxyHost returns the Host of the proxy running this module. Outside a wasm build there is no
// proxy: every call fails with StatusUnimplemented. Native tests use package abitest instead.
func ProxyHost() Host { return unimplementedHost{} }

type unimplementedHost struct{}

func (unimplementedHost) Log(LogLevel, string) error { return StatusUnimplemented }
func (unimplementedHost) LogLevel() (LogLevel, error) {
	return LogOff, StatusUnimplemented
}
func (unimplementedHost) GetBuffer(BufferType, uint32, uint32) ([]byte, error) {
	return nil, StatusUnimplemented
}
func (unimplementedHost) GetHeader(MapType, string) (string, bool, error) {
	return "", false, StatusUnimplemented
}
func (unimplementedHost) GetHeaders(_ MapType, dst []Header) ([]Header, error) {
	return dst, StatusUnimplemented
}
func (unimplementedHost) AddHeader(MapType, string, string) error     { return StatusUnimplemented }
func (unimplementedHost) ReplaceHeader(MapType, string, string) error { return StatusUnimplemented }
func (unimplementedHost) RemoveHeader(MapType, string) error          { return StatusUnimplemented }
func (unimplementedHost) SendLocalResponse(uint32, string, []byte, []Header, int32) error {
	return StatusUnimplemented
}
func (unimplementedHost) DefineMetric(MetricType, string) (uint32, error) {
	return 0, StatusUnimplemented
}
func (unimplementedHost) IncrementMetric(uint32, int64) error { return StatusUnimplemented }
