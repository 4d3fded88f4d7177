package driver

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"telechaos/models"
)

// MediaOptions configures NewMediaFactory.
type MediaOptions struct {
	// LoopbackOnly restricts candidates to the loopback interface. NewMediaFactory
	// treats the zero value as true (the default); set AllInterfaces to widen.
	LoopbackOnly bool
	// AllInterfaces gathers on every interface (overrides LoopbackOnly).
	AllInterfaces bool
	Logger        *slog.Logger
}

// MediaFactory builds client peers that share one webrtc.API, SettingEngine and
// DTLS certificate.
type MediaFactory struct{}

// NewMediaFactory builds the shared WebRTC client side.
func NewMediaFactory(opts MediaOptions) (*MediaFactory, error) { return nil, errors.New("TODO") }

// PeerStats counts frames sent and received by one Peer.
type PeerStats struct {
	AudioSent, VideoSent, AudioReceived, VideoReceived int64
}

// Peer is one client PeerConnection.
type Peer struct{}

// NewPeer makes a PeerConnection; onFrame receives every frame it receives.
func (f *MediaFactory) NewPeer(onFrame func(kind models.Kind, payload []byte, at time.Time)) (*Peer, error) {
	return nil, errors.New("TODO")
}

func (p *Peer) OfferAudio(ctx context.Context) (string, error) { return "", errors.New("TODO") }
func (p *Peer) Accept(answerSDP string) error                  { return errors.New("TODO") }
func (p *Peer) OfferVideo(ctx context.Context) (string, error) { return "", errors.New("TODO") }
func (p *Peer) WaitConnected(ctx context.Context) error        { return errors.New("TODO") }
func (p *Peer) SendAudio(frame []byte) error                   { return errors.New("TODO") }
func (p *Peer) SendVideo(frame []byte) error                   { return errors.New("TODO") }
func (p *Peer) Stats() PeerStats                               { return PeerStats{} }
func (p *Peer) Close() error                                   { return nil }
