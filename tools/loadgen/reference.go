package main

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/leakguard/leakguard/server"
)

// newReferenceHandler returns the decode-only reference of the receiver's
// load runs (tools/loadgen): it reads and decodes the webhook body with
// server.DecodeMessage, answers 400 when that fails and 200
// {"status":"ok"} otherwise, with no router, middleware, authentication,
// metrics or Processor. The load run drives it and server.NewHandler with
// the same payloads in the same run; the ratio of their costs is what
// leakguard adds to decoding. It is not served by leakguard.
func newReferenceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := server.DecodeMessage(r.Body); err != nil {
			writeReferenceError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeReferenceJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
	})
}

// writeReferenceError answers {"error": msg} with status, encoded as the
// receiver encodes its own error answers (server.ErrorResponse, HTML left
// unescaped).
func writeReferenceError(w http.ResponseWriter, status int, msg string) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(server.ErrorResponse{Error: msg}); err != nil {
		// A struct of one string always encodes; should it not, the answer
		// is the receiver's own for an unencodable body.
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error: cannot encode the answer"}` + "\n")
	}
	writeReferenceJSON(w, status, buf.Bytes())
}

// writeReferenceJSON answers body with status and the receiver's JSON
// headers.
func writeReferenceJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body) // a client that went away cannot be answered
}
