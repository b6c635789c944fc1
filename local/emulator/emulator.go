// Package emulator runs in-process stand-ins for DynamoDB and KMS that speak
// the real wire protocols (github.com/truora/minidyn and
// github.com/nsmithuk/local-kms), so the same aws-sdk-go-v2 clients the
// functions use in AWS talk to them unchanged. Used by `make dev` and by the
// tests; never linked into a Lambda binary.
package emulator

import (
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"

	kmscfg "github.com/nsmithuk/local-kms/src/config"
	kmsdata "github.com/nsmithuk/local-kms/src/data"
	kmshandler "github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
	ddbserver "github.com/truora/minidyn/server"

	"github.com/connmgr/connmgr/local/loopback"
)

// Region and AccountID are what the emulators report in ARNs.
const (
	Region    = "us-east-1"
	AccountID = "111122223333"
)

// Server is an emulator listening on loopback.
type Server = loopback.Server

func serve(addr string, h http.Handler, closeFn func()) (*Server, error) {
	s, err := loopback.Serve(addr, h, closeFn)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	return s, nil
}

// StartDynamoDB serves an empty in-memory DynamoDB on addr ("" = a free port).
func StartDynamoDB(addr string) (*Server, error) {
	return serve(addr, ddbserver.NewServer(), nil)
}

var kmsOnce sync.Once

// StartKMS serves KMS on addr ("" = a free port), keeping keys in dir.
func StartKMS(addr, dir string) (*Server, error) {
	kmsOnce.Do(func() {
		// local-kms keeps these as package globals used to build ARNs.
		kmscfg.AWSRegion = Region
		kmscfg.AWSAccountId = AccountID
	})
	var db *kmsdata.Database
	if err := func() (err error) {
		defer func() {
			if p := recover(); p != nil { // NewDatabase panics on error
				err = fmt.Errorf("emulator: open KMS store in %s: %v", dir, p)
			}
		}()
		db = kmsdata.NewDatabase(dir)
		return nil
	}(); err != nil {
		return nil, err
	}
	// local-kms's own entry point logs every request in colour to stderr; this
	// dispatcher does the same work with a logger that discards.
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.Contains(r.Header.Get("Content-Type"), "json") {
			http.Error(w, "KMS emulator speaks the JSON protocol over POST", http.StatusBadRequest)
			return
		}
		target := strings.Split(r.Header.Get("X-Amz-Target"), ".")
		if len(target) < 2 {
			http.Error(w, "missing X-Amz-Target", http.StatusBadRequest)
			return
		}
		method := reflect.ValueOf(kmshandler.NewRequestHandler(r, quiet, db)).MethodByName(target[1])
		if !method.IsValid() {
			http.Error(w, "operation not implemented: "+target[1], http.StatusNotImplemented)
			return
		}
		resp, ok := method.Call(nil)[0].Interface().(kmshandler.Response)
		if !ok {
			http.Error(w, "unexpected handler result", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(resp.Code)
		io.WriteString(w, resp.Body)
	})
	return serve(addr, h, db.Close)
}
