package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/leakguard/leakguard/server"
)

func TestReferenceHandler(t *testing.T) {
	h := newReferenceHandler()
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"valid", `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"}}]}`, http.StatusOK},
		{"invalid", `{"version":"3"}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, server.AlertsPath, strings.NewReader(tc.body)))
			if rec.Code != tc.want {
				t.Errorf("POST %s = %d, want %d; body %s", tc.name, rec.Code, tc.want, rec.Body)
			}
		})
	}
}
