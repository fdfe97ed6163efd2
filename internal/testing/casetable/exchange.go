package casetable

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
)

// Exchange sends r to addr over HTTP/1.1 exactly as written (Go's client would normalise the
// target and the Host) and returns the status, the headers as they were on the wire (the
// client's reader drops some, such as Connection: close) and the body.
func Exchange(addr string, r Request) (status int, headers []Header, body []byte, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("casetable: %w", err)
	}
	defer func() { _ = conn.Close() }() // the response is read in full first
	var b bytes.Buffer
	b.WriteString(r.Method + " " + r.Path + " HTTP/1.1\r\nHost: " + r.Authority + "\r\n")
	for _, h := range r.Headers {
		b.WriteString(h[0] + ": " + h[1] + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := conn.Write(b.Bytes()); err != nil {
		return 0, nil, nil, fmt.Errorf("casetable: writing %s %q: %w", r.Method, r.Path, err)
	}
	var raw bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &raw)), &http.Request{Method: r.Method})
	if err != nil {
		return 0, nil, nil, fmt.Errorf("casetable: reading the answer to %s %q: %w", r.Method, r.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if body, err = io.ReadAll(resp.Body); err != nil {
		return 0, nil, nil, fmt.Errorf("casetable: reading the body of %s %q: %w", r.Method, r.Path, err)
	}
	head, _, _ := bytes.Cut(raw.Bytes(), []byte("\r\n\r\n"))
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))))
	if _, err := tp.ReadLine(); err != nil { // status line
		return 0, nil, nil, fmt.Errorf("casetable: %w", err)
	}
	for {
		line, err := tp.ReadLine()
		if err != nil || line == "" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		headers = append(headers, Header{name, strings.TrimSpace(value)})
	}
	return resp.StatusCode, headers, body, nil
}
