package driver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// The authorization matrix (docs/decisions.md): a driver that implements
// AuthzProber declares which of its routes take ids and how a request's
// identity can be varied, and sends one probe request per variant. The
// harness decides who probes what (ids harvested from other users' calls)
// and judges every answer; the driver only knows its own wire format.

// Route is one route of a target that takes ids, as its driver names it.
type Route struct {
	// Name identifies the route in the tally ("GET /v1/replays/{rid}").
	Name string
	// Write: the route changes state (join, switch, end). The harness sends
	// writes only against consultations it knows the prober is no part of,
	// and a correct target's denial changes nothing.
	Write bool
	// Which ids the route takes.
	Consultation, Recording, Track bool
}

// Credential is how a probe request authenticates.
type Credential string

// The credentials the matrix varies.
const (
	CredToken     Credential = "token"           // the prober's own valid token
	CredNone      Credential = "no-token"        // no credential at all
	CredMalformed Credential = "malformed-token" // a token of the right shape that was never issued
	CredTruncated Credential = "truncated-token" // the prober's token cut short
)

// Override is an identity override a framework may honour: a header or a
// query parameter naming the user the request claims to be.
type Override struct {
	In   string // "header" or "query"
	Name string
}

func (o Override) String() string { return o.In + ":" + o.Name }

// IdentityVariation is how a driver can vary a request's identity.
type IdentityVariation struct {
	// Credentials besides CredToken (always tried).
	Credentials []Credential
	// Overrides are sent with the prober's own token and without any.
	Overrides []Override
}

// ProbeIDs are the ids of one probe request; a route uses those it takes.
type ProbeIDs struct {
	Consultation, Recording, Track string
}

// AuthzRequest is one probe request of the matrix.
type AuthzRequest struct {
	Route Route
	As    Session // the prober (its token, and its id in logs)
	Cred  Credential
	// Override, when set, carries Claim (a victim's user id).
	Override *Override
	Claim    string
	IDs      ProbeIDs
}

// AuthzAnswer is the target's answer to a probe: its HTTP status (or the
// target's equivalent) and the bytes of a 2xx body (an error body is not
// data and counts 0).
type AuthzAnswer struct {
	Status int
	Bytes  int
}

// AuthzProber is implemented by a Target whose driver declares its
// authorization matrix. A Target that does not implement it still gets the
// plain probes (Consultation, GetReplay, FetchMedia with the prober's own
// session), and the run reports the matrix as not run for it.
type AuthzProber interface {
	Routes() []Route
	IdentityVariation() IdentityVariation
	// ProbeRequest sends r once and returns the answer; an error without an
	// answer (Status 0) says nothing about access control.
	ProbeRequest(ctx context.Context, r AuthzRequest) (AuthzAnswer, error)
}

var _ AuthzProber = (*HTTPTarget)(nil)

// The routes of docs/api.md that take ids.
var httpRoutes = []Route{
	{Name: "GET /v1/consultations/{cid}", Consultation: true},
	{Name: "POST /v1/consultations/{cid}/join", Write: true, Consultation: true},
	{Name: "POST /v1/consultations/{cid}/video", Write: true, Consultation: true},
	{Name: "POST /v1/consultations/{cid}/end", Write: true, Consultation: true},
	{Name: "GET /v1/replays/{rid}", Recording: true},
	{Name: "GET /v1/replays/{rid}/media?track=", Recording: true, Track: true},
}

// Routes declares the contract's routes that take ids.
func (h *HTTPTarget) Routes() []Route { return append([]Route(nil), httpRoutes...) }

// IdentityVariation declares the credentials and overrides of the HTTP
// contract: bearer tokens, and the headers and query parameters that
// proxies and frameworks commonly trust as the caller's identity.
func (h *HTTPTarget) IdentityVariation() IdentityVariation {
	return IdentityVariation{
		Credentials: []Credential{CredNone, CredMalformed, CredTruncated},
		Overrides: []Override{
			{"header", "X-User-Id"}, {"header", "X-Forwarded-User"}, {"header", "X-Original-User"},
			{"query", "user_id"}, {"query", "as"}, {"query", "owner"},
		},
	}
}

// probeOffer is a syntactically complete SDP audio offer for probe writes:
// a denied join or switch never reaches the media engine, and one a target
// wrongly accepts is judged by its status alone.
const probeOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na=mid:0\r\na=sendrecv\r\n" +
	"a=ice-ufrag:probeprobe\r\na=ice-pwd:probeprobeprobeprobeprobe\r\n" +
	"a=fingerprint:sha-256 00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00\r\n" +
	"a=setup:actpass\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n"

// probeClient sends probe requests through net/http: they need headers the
// lean client does not send, and they are few. A caller's client is used
// as given; otherwise one shared transport serves every target's probes.
func (h *HTTPTarget) probeClient() *http.Client {
	if h.client != nil {
		return h.client
	}
	probeOnce.Do(func() {
		probeHTTP = &http.Client{Transport: newTransport(), CheckRedirect: noRedirect}
	})
	return probeHTTP
}

var (
	probeOnce sync.Once
	probeHTTP *http.Client
)

// probeToken is the credential r asks for ("" for none).
func probeToken(r AuthzRequest) string {
	switch r.Cred {
	case CredToken:
		return r.As.Token
	case CredMalformed:
		// The shape of a real token (the same length, hex when it is hex),
		// but never issued: the prober's own with every character changed.
		b := []byte(r.As.Token)
		for i, c := range b {
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
				b[i] = "fedcba9876543210"[strings.IndexByte("0123456789abcdef", c)]
			default:
				b[i] = 'x'
			}
		}
		if len(b) == 0 {
			return "malformed"
		}
		return string(b)
	case CredTruncated:
		return r.As.Token[:len(r.As.Token)/2]
	}
	return ""
}

// ProbeRequest sends one probe request of the matrix.
func (h *HTTPTarget) ProbeRequest(ctx context.Context, r AuthzRequest) (AuthzAnswer, error) {
	var method, path string
	var body []byte
	q := url.Values{}
	switch r.Route.Name {
	case httpRoutes[0].Name:
		method, path = http.MethodGet, "/v1/consultations/"+esc(r.IDs.Consultation)
		if r.IDs.Recording != "" {
			// The id mix "a foreign consultation with your own recording":
			// a route that reads a recording id beside the path's must not
			// let it stand in for taking part.
			q.Set("recording_id", r.IDs.Recording)
		}
	case httpRoutes[1].Name, httpRoutes[2].Name:
		method, path = http.MethodPost, "/v1/consultations/"+esc(r.IDs.Consultation)+"/"+r.Route.Name[strings.LastIndexByte(r.Route.Name, '/')+1:]
		body = jsonObject("type", "offer", "sdp", probeOffer)
	case httpRoutes[3].Name:
		method, path = http.MethodPost, "/v1/consultations/"+esc(r.IDs.Consultation)+"/end"
	case httpRoutes[4].Name:
		method, path = http.MethodGet, "/v1/replays/"+esc(r.IDs.Recording)
	case httpRoutes[5].Name:
		method, path = http.MethodGet, "/v1/replays/"+esc(r.IDs.Recording)+"/media"
		q.Set("track", r.IDs.Track)
	default:
		return AuthzAnswer{}, fmt.Errorf("probe: unknown route %q", r.Route.Name)
	}
	hdr := http.Header{}
	if o := r.Override; o != nil {
		switch o.In {
		case "header":
			hdr.Set(o.Name, r.Claim)
		case "query":
			q.Set(o.Name, r.Claim)
		default:
			return AuthzAnswer{}, fmt.Errorf("probe: override %s: want header or query", o)
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	rctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, h.base.String()+path, rd)
	if err != nil {
		return AuthzAnswer{}, fmt.Errorf("probe %s: build request: %w", r.Route.Name, err)
	}
	req.Header = hdr
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := probeToken(r); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := h.probeClient().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return AuthzAnswer{}, fmt.Errorf("probe %s: %w", r.Route.Name, ctx.Err())
		}
		return AuthzAnswer{}, fmt.Errorf("probe %s: %w: %w", r.Route.Name, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	ans := AuthzAnswer{Status: resp.StatusCode}
	// A 2xx body is what leaked: counted up to MaxBody, never kept. An
	// error body is read (bounded) only to keep the connection.
	limit := int64(maxErrorBody)
	if resp.StatusCode/100 == 2 {
		limit = h.maxBody
	}
	// A read error after the status does not change it: a 2xx is a leak
	// whatever its body.
	n, _ := io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
	if resp.StatusCode/100 == 2 {
		ans.Bytes = int(n)
	}
	return ans, nil
}
