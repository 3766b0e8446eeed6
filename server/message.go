// Package server is leakguard's Alertmanager webhook receiver: the chi
// router with its middleware, the decoding and validation of webhook
// payloads, authentication, the health, readiness and metrics endpoints and
// the HTTP(S) server with certificate reloading.
//
// The package knows nothing of Kubernetes: what happens to a decoded payload
// is the business of a Processor, and readiness is a map of named checks,
// both handed in by the caller.
package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"
)

// SupportedVersion is the only webhook payload version the receiver accepts.
// Alertmanager 0.25 sends it (see testdata/), and so does 0.34.
const SupportedVersion = "4"

// Alert and payload statuses that Alertmanager sends.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Message is an Alertmanager webhook payload (version 4).
type Message struct {
	*template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// DecodeMessage reads and validates one payload: JSON, version "4", at least
// one alert, every alert has a non-empty labels.alertname, and the payload and
// every alert have the status firing or resolved. Fields it does not know are
// ignored, so that a newer Alertmanager adding a field is still understood.
// Errors say what is wrong and, for an alert, its index. An error from r (for
// example *http.MaxBytesError) is wrapped, so errors.As finds it. A body
// that is not valid UTF-8 is malformed (RFC 8259 section 8.1), though
// encoding/json would accept it and replace the bad bytes.
func DecodeMessage(r io.Reader) (*Message, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read alertmanager payload: %w", err)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("decode alertmanager payload: not valid UTF-8 at byte %d (JSON text must be UTF-8, RFC 8259 section 8.1)", firstInvalidUTF8(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var msg Message
	if err := dec.Decode(&msg); err != nil {
		return nil, describeJSONError(err)
	}
	// Exactly one JSON value: anything after it but white space is malformed.
	if err := expectEOF(dec); err != nil {
		return nil, err
	}
	if err := msg.validate(); err != nil {
		return nil, fmt.Errorf("invalid alertmanager payload: %w", err)
	}
	return &msg, nil
}

// firstInvalidUTF8 returns the offset of the first byte of b that does not
// begin a valid UTF-8 sequence.
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// expectEOF reports an error unless the decoder's input ends after the value
// it has read (trailing white space aside).
func expectEOF(dec *json.Decoder) error {
	var extra json.RawMessage
	err := dec.Decode(&extra)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return fmt.Errorf("decode alertmanager payload: unexpected data after the JSON object at byte %d", dec.InputOffset()-int64(len(extra)))
	default:
		// Either a syntax error in the trailing bytes or a read error (such
		// as the body limit); both make the payload unusable.
		return describeJSONError(err)
	}
}

// describeJSONError wraps a decoding error with where it happened, keeping
// the original error for errors.As.
func describeJSONError(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("decode alertmanager payload: invalid JSON at byte %d: %w", syntaxErr.Offset, err)
	case errors.As(err, &typeErr):
		// The embedded template.Data shows in the path as "Data.".
		field := strings.TrimPrefix(typeErr.Field, "Data.")
		if field == "" {
			field = "the payload"
		}
		return fmt.Errorf("decode alertmanager payload: %s must be %s, not a JSON %s: %w", field, jsonKind(typeErr.Type), typeErr.Value, err)
	case errors.Is(err, io.EOF):
		return errors.New("decode alertmanager payload: empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("decode alertmanager payload: truncated JSON: %w", err)
	default:
		return fmt.Errorf("decode alertmanager payload: %w", err)
	}
}

// jsonKind names the JSON kind that decodes into t.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return "an RFC 3339 time string"
		}
		return "an object"
	case reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "another type"
	}
}

// validate checks what DecodeMessage promises about a decoded payload.
func (m *Message) validate() error {
	if m.Version != SupportedVersion {
		return fmt.Errorf("unsupported payload version %q, want %q", m.Version, SupportedVersion)
	}
	if m.Data == nil || len(m.Alerts) == 0 {
		// Alertmanager never notifies about an empty group.
		return errors.New("payload has no alerts")
	}
	if !validStatus(m.Status) {
		return fmt.Errorf("payload status %q, want %q or %q", m.Status, StatusFiring, StatusResolved)
	}
	var problems []string
	for i, a := range m.Alerts {
		if a.Labels["alertname"] == "" {
			problems = append(problems, fmt.Sprintf("alert %d: labels.alertname is missing or empty", i))
		}
		if !validStatus(a.Status) {
			problems = append(problems, fmt.Sprintf("alert %d: status %q, want %q or %q", i, a.Status, StatusFiring, StatusResolved))
		}
		// Report a bounded number of problems: a payload of 10,000 broken
		// alerts should not produce a megabyte of error text.
		if len(problems) >= maxReportedErrors && i+1 < len(m.Alerts) {
			problems = append(problems, fmt.Sprintf("more problems in alerts %d to %d not reported", i+1, len(m.Alerts)-1))
			break
		}
	}
	if len(problems) > 0 {
		// One line, as it ends up in a JSON error and in logs.
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// maxReportedErrors bounds the alert problems one validation error lists.
const maxReportedErrors = 5

func validStatus(s string) bool {
	return s == StatusFiring || s == StatusResolved
}

// encodeJSON marshals v with a trailing newline and without HTML escaping
// (the answers are read by Alertmanager's logs and people, not browsers).
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
