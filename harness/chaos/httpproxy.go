package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"

	"github.com/telechaos/telechaos/scenarios/faultspec"
)

// quietToxics: Toxiproxy's bandwidth toxic logs at trace level through
// zerolog's global logger (to stderr); nothing else in telechaos uses zerolog,
// so raising that logger's level once is the least intrusive way to keep
// chaos runs' output clean.
var quietToxics sync.Once

// HTTPProxy is an in-process Toxiproxy proxy (the library, not its server or
// a container) listening on 127.0.0.1 and forwarding to the target's
// host:port. The runner points the HTTP driver at URL(); toxics added and
// removed by HTTPFaults then sit between the virtual users and the target.
//
// Its front address is stable for the proxy's life: when the embedded clinic
// restarts on new ports, Retarget moves the upstream and clients keep their
// base URL. That is why chaos runs always front the embedded clinic with it.
type HTTPProxy struct {
	mu       sync.Mutex
	p        *toxiproxy.Proxy
	scheme   string
	listen   string // 127.0.0.1:port, fixed after the first start
	upstream string
	closed   bool
}

// NewHTTPProxy starts a proxy to upstream, an http(s) base URL or a host:port.
func NewHTTPProxy(upstream string) (*HTTPProxy, error) {
	scheme, hostport, err := splitUpstream(upstream)
	if err != nil {
		return nil, err
	}
	quietToxics.Do(func() { zlog.Logger = zlog.Logger.Level(zerolog.WarnLevel) })
	log := zerolog.Nop()
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), log)
	p := toxiproxy.NewProxy(srv, "telechaos-http", "127.0.0.1:0", hostport)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("http proxy: listen on 127.0.0.1: %w", err)
	}
	return &HTTPProxy{p: p, scheme: scheme, listen: p.Listen, upstream: hostport}, nil
}

// splitUpstream accepts "http://host:port[/...]" or "host:port".
func splitUpstream(s string) (scheme, hostport string, err error) {
	scheme = "http"
	hostport = s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", "", fmt.Errorf("http proxy: upstream %q: %w", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", "", fmt.Errorf("http proxy: upstream %q: scheme must be http or https", s)
		}
		scheme, hostport = u.Scheme, u.Host
		if u.Port() == "" {
			port := "80"
			if scheme == "https" {
				port = "443"
			}
			hostport = net.JoinHostPort(u.Hostname(), port)
		}
	}
	if _, port, err := net.SplitHostPort(hostport); err != nil || port == "" || port == "0" {
		return "", "", fmt.Errorf("http proxy: upstream %q: want host:port or an http(s) URL", s)
	}
	return scheme, hostport, nil
}

// URL is the base URL clients use, e.g. "http://127.0.0.1:PORT". (An https
// upstream stays https through the TCP proxy, but certificates naming the
// upstream's host will not verify against 127.0.0.1.)
func (h *HTTPProxy) URL() string { return h.scheme + "://" + h.listen }

// Addr is the proxy's listen address (127.0.0.1:port).
func (h *HTTPProxy) Addr() string { return h.listen }

// Upstream is the host:port the proxy forwards to now.
func (h *HTTPProxy) Upstream() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.upstream
}

// Retarget forwards new connections to upstream (a URL or host:port) from
// now on, keeping the front address. Open connections are cut: they led to
// the old upstream, which is gone after a restart. Toxics stay in place.
func (h *HTTPProxy) Retarget(upstream string) error {
	_, hostport, err := splitUpstream(upstream)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("http proxy: retarget: %w", ErrStopped)
	}
	if hostport == h.upstream {
		return nil
	}
	// Update stops the listener, closes the links and listens again on the
	// same address (Go listeners set SO_REUSEADDR, so the port is ours again).
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		in := &toxiproxy.Proxy{Listen: h.listen, Upstream: hostport, Enabled: true}
		if lastErr = h.p.Update(in); lastErr == nil && h.p.Enabled {
			h.upstream = hostport
			return nil
		}
		time.Sleep(25 * time.Millisecond) // the port is briefly held by the old listener
	}
	return fmt.Errorf("http proxy: retarget to %s: %w", hostport, lastErr)
}

// Toxic is one Toxiproxy toxic: Type is latency, bandwidth, reset_peer,
// timeout, slicer, slow_close or limit_data; Stream is upstream (requests) or
// downstream (responses); Toxicity is the fraction of connections affected
// (0 means 1); Attributes are the type's fields (see toxiproxy's README).
type Toxic struct {
	Name       string
	Type       string
	Stream     string
	Toxicity   float64
	Attributes map[string]any
}

// AddToxic installs t on every current and future connection.
func (h *HTTPProxy) AddToxic(t Toxic) error {
	if t.Toxicity == 0 {
		t.Toxicity = 1
	}
	if t.Stream == "" {
		t.Stream = "downstream"
	}
	body, err := json.Marshal(map[string]any{
		"name": t.Name, "type": t.Type, "stream": t.Stream,
		"toxicity": t.Toxicity, "attributes": t.Attributes,
	})
	if err != nil {
		return fmt.Errorf("http proxy: toxic %s: %w", t.Name, err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return fmt.Errorf("http proxy: add toxic %s: %w", t.Name, ErrStopped)
	}
	if _, err := h.p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		return fmt.Errorf("http proxy: add toxic %s (%s %s): %w", t.Name, t.Type, t.Stream, err)
	}
	return nil
}

// RemoveToxic removes the toxic called name; a toxic that is not there is no error.
func (h *HTTPProxy) RemoveToxic(ctx context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if err := h.p.Toxics.RemoveToxic(ctx, name); err != nil && !errors.Is(err, toxiproxy.ErrToxicNotFound) {
		return fmt.Errorf("http proxy: remove toxic %s: %w", name, err)
	}
	return nil
}

// Toxics lists the names of the toxics installed now.
func (h *HTTPProxy) Toxics() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, t := range h.p.Toxics.GetToxicArray() {
		if w, ok := t.(*toxics.ToxicWrapper); ok {
			out = append(out, w.Name)
		}
	}
	return out
}

// Close removes every toxic, stops listening and cuts every connection.
func (h *HTTPProxy) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.p.Toxics.ResetToxics(ctx)
	h.p.Stop()
	return nil
}

// HTTPFault installs one or more toxics for its window.
type HTTPFault struct {
	name   string
	kind   string
	proxy  *HTTPProxy
	toxics []Toxic
	params map[string]string
}

var (
	_ Fault = (*HTTPFault)(nil)
	_ Quick = (*HTTPFault)(nil)
)

// Quick: Inject only adds toxics.
func (f *HTTPFault) Quick() bool { return true }

// The HTTP fault kinds: Toxiproxy toxics on the proxy fronting the target.
func init() {
	for _, k := range []string{faultspec.KindHTTPLatency, faultspec.KindHTTPBandwidth, faultspec.KindHTTPReset,
		faultspec.KindHTTPTimeout, faultspec.KindHTTPSlicer} {
		register(k, buildHTTP)
	}
}

func buildHTTP(name string, f faultspec.FaultSpec, env Env) (Fault, error) {
	return NewHTTPFault(name, env.Proxy, HTTPSpec{
		Kind: f.Kind, Latency: f.Latency.Duration, Jitter: f.Jitter.Duration, RateKBps: f.Rate,
		Timeout: f.Timeout.Duration, AverageSize: f.AverageSize, SizeVariation: f.SizeVariation,
		SliceDelay: f.Delay.Duration, Stream: f.Stream, Toxicity: f.Toxicity,
	})
}

// HTTPSpec parameterises NewHTTPFault. Durations are rounded to milliseconds
// (slicer delay to microseconds), as Toxiproxy takes them.
type HTTPSpec struct {
	Kind            string
	Latency, Jitter time.Duration
	RateKBps        int64
	Timeout         time.Duration
	AverageSize     int
	SizeVariation   int
	SliceDelay      time.Duration
	Stream          string  // upstream, downstream (default) or both
	Toxicity        float64 // fraction of connections affected, default 1
}

// NewHTTPFault builds a fault of spec.Kind on proxy, labelled name.
func NewHTTPFault(name string, proxy *HTTPProxy, spec HTTPSpec) (*HTTPFault, error) {
	var typ string
	attrs := map[string]any{}
	params := map[string]string{ParamKind: spec.Kind}
	switch spec.Kind {
	case faultspec.KindHTTPLatency:
		typ = "latency"
		attrs["latency"], attrs["jitter"] = spec.Latency.Milliseconds(), spec.Jitter.Milliseconds()
		params["latency"], params["jitter"] = spec.Latency.String(), spec.Jitter.String()
	case faultspec.KindHTTPBandwidth:
		typ = "bandwidth"
		attrs["rate"] = spec.RateKBps
		params["rate_kbps"] = strconv.FormatInt(spec.RateKBps, 10)
	case faultspec.KindHTTPReset:
		typ = "reset_peer"
		attrs["timeout"] = spec.Timeout.Milliseconds()
		params["timeout"] = spec.Timeout.String()
	case faultspec.KindHTTPTimeout:
		typ = "timeout"
		attrs["timeout"] = spec.Timeout.Milliseconds()
		params["timeout"] = spec.Timeout.String()
	case faultspec.KindHTTPSlicer:
		typ = "slicer"
		attrs["average_size"], attrs["size_variation"], attrs["delay"] = spec.AverageSize, spec.SizeVariation, spec.SliceDelay.Microseconds()
		params["average_size"], params["size_variation"], params["delay"] = strconv.Itoa(spec.AverageSize), strconv.Itoa(spec.SizeVariation), spec.SliceDelay.String()
	default:
		return nil, fmt.Errorf("%w: unknown http fault kind %q", faultspec.ErrInvalidProfile, spec.Kind)
	}
	streams := []string{"downstream"}
	switch spec.Stream {
	case "", "downstream":
	case "upstream":
		streams = []string{"upstream"}
	case "both":
		streams = []string{"upstream", "downstream"}
	default:
		return nil, fmt.Errorf("%w: stream %q: want upstream, downstream or both", faultspec.ErrInvalidProfile, spec.Stream)
	}
	params["stream"] = strings.Join(streams, "+")
	if spec.Toxicity != 0 {
		params["toxicity"] = strconv.FormatFloat(spec.Toxicity, 'g', -1, 64)
	}
	f := &HTTPFault{name: name, kind: spec.Kind, proxy: proxy, params: params}
	for _, s := range streams {
		f.toxics = append(f.toxics, Toxic{Name: name + "/" + s, Type: typ, Stream: s, Toxicity: spec.Toxicity, Attributes: attrs})
	}
	return f, nil
}

func (f *HTTPFault) Name() string              { return f.name }
func (f *HTTPFault) Params() map[string]string { return f.params }

func (f *HTTPFault) Available(env Env) error {
	if f.proxy == nil || env.Proxy == nil {
		return fmt.Errorf("%s: %w: the target is not fronted by the HTTP proxy", f.name, ErrUnavailable)
	}
	return nil
}

func (f *HTTPFault) Inject(ctx context.Context) error {
	for _, t := range f.toxics {
		if err := f.proxy.AddToxic(t); err != nil {
			return err
		}
	}
	return nil
}

func (f *HTTPFault) Heal(ctx context.Context) error {
	var errs []error
	for _, t := range f.toxics {
		errs = append(errs, f.proxy.RemoveToxic(ctx, t.Name))
	}
	return errors.Join(errs...)
}
