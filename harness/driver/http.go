package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"telechaos/models"
)

// HTTPOptions configures NewHTTP.
type HTTPOptions struct {
	Client   *http.Client  // nil: a shared client sized for hundreds of users
	Observer Observer      // nil: none
	Timeout  time.Duration // per request; default 15s
	MaxBody  int64         // cap on a response body; default 64 MiB
}

// HTTPTarget implements Target over the HTTP contract of docs/api.md.
type HTTPTarget struct {
	base string
	opts HTTPOptions
}

var _ Target = (*HTTPTarget)(nil)

// NewHTTP returns a Target for the contract served at baseURL.
func NewHTTP(baseURL string, opts HTTPOptions) (*HTTPTarget, error) {
	return nil, errors.New("TODO")
}

func (h *HTTPTarget) Register(ctx context.Context, role models.Role) (Session, error) {
	return Session{}, errors.New("TODO")
}
func (h *HTTPTarget) Book(ctx context.Context, patient Session, clinicianID string) (Booking, error) {
	return Booking{}, errors.New("TODO")
}
func (h *HTTPTarget) Join(ctx context.Context, s Session, consultationID, offerSDP string) (string, int, error) {
	return "", 0, errors.New("TODO")
}
func (h *HTTPTarget) SwitchVideo(ctx context.Context, s Session, consultationID, offerSDP string) (string, error) {
	return "", errors.New("TODO")
}
func (h *HTTPTarget) End(ctx context.Context, s Session, consultationID string) (EndResult, error) {
	return EndResult{}, errors.New("TODO")
}
func (h *HTTPTarget) Consultation(ctx context.Context, s Session, consultationID string) (ConsultationInfo, error) {
	return ConsultationInfo{}, errors.New("TODO")
}
func (h *HTTPTarget) ListReplays(ctx context.Context, s Session) ([]ReplaySummary, error) {
	return nil, errors.New("TODO")
}
func (h *HTTPTarget) GetReplay(ctx context.Context, s Session, replayID string) (Replay, error) {
	return Replay{}, errors.New("TODO")
}
func (h *HTTPTarget) FetchMedia(ctx context.Context, s Session, replayID, trackID string) ([]byte, error) {
	return nil, errors.New("TODO")
}
func (h *HTTPTarget) Health(ctx context.Context) error { return errors.New("TODO") }

var _ = fmt.Sprint
var _ = slog.Default
