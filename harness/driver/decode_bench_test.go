package driver

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

const benchReplay = `{"id":"rec-0123456789abcdef","consultation_id":"con-0123456789abcdef","title":"Consultation with clinician","participants":["usr-0123456789abcdef","usr-fedcba9876543210"],"started_at":"2026-11-25T03:53:04Z","ended_at":"2026-11-25T03:53:05Z","tracks":[]}`

func BenchmarkDecodeReplay(b *testing.B) {
	body := []byte(benchReplay)
	b.ReportAllocs()
	for b.Loop() {
		var out replayOut
		if err := decodeFast(OpReplay, body, 0, out.fastDecode, func() error { return slowDecode(OpReplay, body, &out) }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHTTPGetReplay(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, benchReplay)
	}))
	defer srv.Close()
	h, _ := NewHTTP(srv.URL, HTTPOptions{Observer: func(Observation) {}})
	defer h.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.GetReplay(context.Background(), sess, "rec-0123456789abcdef"); err != nil {
			b.Fatal(err)
		}
	}
}
