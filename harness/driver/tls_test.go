package driver

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An https target behind a private CA: refused against the system roots,
// served with the CA named by CAFile; a bad CA file is an error naming it.
func TestHTTPSCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	ctx := context.Background()

	plain, err := NewHTTP(srv.URL, HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	err = plain.Health(ctx)
	var unknown x509.UnknownAuthorityError
	if err == nil || !errors.As(err, &unknown) {
		t.Fatalf("health against a private CA with system roots: %v, want an unknown-authority error", err)
	}

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	withCA, err := NewHTTP(srv.URL, HTTPOptions{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	defer withCA.Close()
	if err := withCA.Health(ctx); err != nil {
		t.Fatalf("health with the CA file: %v", err)
	}

	for name, content := range map[string]string{"missing.pem": "", "empty.pem": "not a certificate\n"} {
		p := filepath.Join(dir, name)
		if content != "" {
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		_, err := NewHTTP(srv.URL, HTTPOptions{CAFile: p})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("CAFile %s: %v, want an error naming the file", name, err)
		}
	}
}
