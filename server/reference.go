package server

import "net/http"

// NewReferenceHandler returns the decode-only reference of the receiver's
// load runs (hack/loadgen): it reads and decodes the webhook body with
// DecodeMessage, answers 400 when that fails and 200 {"status":"ok"}
// otherwise, with no router, middleware, authentication, metrics or
// Processor. The load run drives it and NewHandler with the same payloads
// in the same run; the ratio of their costs is what leakguard adds to
// decoding. It is not served by leakguard.
func NewReferenceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := DecodeMessage(r.Body); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSONBytes(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
	})
}
