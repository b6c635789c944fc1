// Package loopback serves the local stand-ins for AWS APIs on 127.0.0.1,
// one listener each, so the real SDK clients reach them by endpoint.
package loopback

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Server is an HTTP handler served on a loopback address.
type Server struct {
	// URL is the endpoint for an SDK client's BaseEndpoint.
	URL      string
	srv      *http.Server
	failed   chan error
	onClosed func()
}

// Serve serves h on addr ("" = a free port on 127.0.0.1); onClosed, if
// set, runs after Close (to release the handler's storage).
func Serve(addr string, h http.Handler, onClosed func()) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if onClosed != nil {
			onClosed()
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, failed: make(chan error, 1), onClosed: onClosed}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.failed <- err
		}
	}()
	return s, nil
}

// Close stops at once, with the clients' idle keep-alive connections (a
// graceful shutdown would wait for them).
func (s *Server) Close() error {
	err := s.srv.Close()
	if s.onClosed != nil {
		s.onClosed()
	}
	select {
	case ferr := <-s.failed:
		return ferr
	default:
	}
	return err
}
