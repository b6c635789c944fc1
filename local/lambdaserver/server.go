package lambdaserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/connmgr/connmgr/local/loopback"
)

// Start serves reg on addr ("" = a free loopback port); Close stops the
// listener and leaves the registry running.
func Start(addr string, reg *Registry) (*loopback.Server, error) {
	s, err := loopback.Serve(addr, Handler(reg), nil)
	if err != nil {
		return nil, fmt.Errorf("lambdaserver: %w", err)
	}
	return s, nil
}

// Handler is the Invoke API handler, for mounting elsewhere.
func Handler(reg *Registry) http.Handler { return &handler{r: reg} }

type handler struct{ r *Registry }

const (
	invokePrefix = "/2015-03-31/functions/"
	invokeSuffix = "/invocations"
)

// Invocation types.
const (
	InvocationRequestResponse = "RequestResponse"
	InvocationEvent           = "Event"
	InvocationDryRun          = "DryRun"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	inv := invocation{id: newUUID()}
	w.Header().Set("X-Amzn-RequestId", inv.id)
	escaped := req.URL.EscapedPath()
	rawName, ok := strings.CutPrefix(escaped, invokePrefix)
	if ok {
		rawName, ok = strings.CutSuffix(rawName, invokeSuffix)
	}
	if !ok || rawName == "" || strings.Contains(rawName, "/") {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "the local Lambda serves only POST "+invokePrefix+"{FunctionName}"+invokeSuffix)
		return
	}
	if req.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "UnknownOperationException", "Invoke is POST only")
		return
	}
	name, err := url.PathUnescape(rawName)
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", "malformed function name")
		return
	}
	typ := req.Header.Get("X-Amz-Invocation-Type")
	limit := MaxSyncPayload
	switch typ {
	case "", InvocationRequestResponse, InvocationDryRun:
	case InvocationEvent:
		limit = MaxAsyncPayload
	default:
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]", typ))
		return
	}
	f, err := h.r.lookup(name, req.URL.Query().Get("Qualifier"))
	if err != nil {
		writeLookupError(w, err)
		return
	}
	if cc := req.Header.Get("X-Amz-Client-Context"); cc != "" {
		raw, err := base64.StdEncoding.DecodeString(cc)
		var parsed lambdacontext.ClientContext
		if err == nil {
			err = json.Unmarshal(raw, &parsed)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "Client context must be a valid Base64-encoded JSON object.")
			return
		}
		inv.clientContext = &parsed
	}
	payload, err := io.ReadAll(io.LimitReader(req.Body, int64(limit)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not read request body")
		return
	}
	if len(payload) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", limit))
		return
	}
	if len(payload) > 0 && !json.Valid(payload) {
		writeError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: Could not parse payload into json")
		return
	}
	switch typ {
	case InvocationDryRun:
		w.WriteHeader(http.StatusNoContent)
	case InvocationEvent:
		if _, err := h.r.invokeAsync(req.Context(), f.Name, "", payload, inv); err != nil {
			switch {
			case errors.Is(err, ErrQueueFull):
				writeError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded.")
			default:
				writeError(w, http.StatusServiceUnavailable, "ServiceException", err.Error())
			}
			return
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		if inv.fault = h.r.fault(f); inv.fault.Throttle {
			writeError(w, http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded.")
			return
		}
		// In AWS a client that goes away does not stop the function.
		out, ferr, err := h.r.call(context.WithoutCancel(req.Context()), f, payload, inv)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "ServiceException", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", LatestVersion)
		if ferr != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			out, _ = json.Marshal(messages.InvokeResponse_Error{Message: ferr.Message, Type: ferr.Type})
		}
		w.WriteHeader(http.StatusOK)
		w.Write(out)
	}
}

func writeLookupError(w http.ResponseWriter, err error) {
	var nf *notFoundError
	var ip *invalidParamError
	switch {
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, "ResourceNotFoundException", nf.Error())
	case errors.As(err, &ip):
		writeError(w, http.StatusBadRequest, "InvalidParameterValueException", ip.Error())
	default:
		writeError(w, http.StatusInternalServerError, "ServiceException", err.Error())
	}
}

// writeError writes Lambda's error shape: the code in X-Amzn-ErrorType and
// {"Type","Message"} (Type "User" for client errors, "Service" otherwise).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	typ := "User"
	if status >= 500 {
		typ = "Service"
	}
	b, _ := json.Marshal(map[string]string{"Type": typ, "Message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	w.Write(b)
}
