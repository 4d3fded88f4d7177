// Package clinic is the reference telehealth service telechaos tests: an HTTP/JSON
// API (docs/api.md) over an embedded SQLite store, with the SFU and recorder of
// package clinic/media behind it and the defects of clinic/bugs wired into the
// real code paths they concern. Start runs it in-process; cmd/clinic wraps it.
package clinic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/telechaos/telechaos/clinic/bugs"
	"github.com/telechaos/telechaos/clinic/media"
)

// Config configures an embedded clinic.
type Config struct {
	Addr         string   // HTTP listen address, e.g. "127.0.0.1:0"
	DataDir      string   // database and recordings; reused across restarts
	UDPPort      int      // the one media port (0 picks a free one)
	ListenIP     string   // media listen IP ("" = all)
	AdvertisedIP string   // IP in the answer's host candidate ("" = 127.0.0.1)
	RecordFormat string   // "" (Ogg audio, IVF video) or "webm"
	Bugs         []string // bug specs ID or ID:P (see clinic/bugs)
	Seed         uint64   // fixes the bugs' firing decisions
	Logger       *slog.Logger
}

// engine is what the HTTP layer needs from the SFU/recorder (*media.Engine).
type engine interface {
	UDPPort() int
	Join(ctx context.Context, c media.Call, participant, offerSDP string) (answerSDP string, segment int, err error)
	Switch(ctx context.Context, consultationID, participant, offerSDP string) (answerSDP string, err error)
	End(ctx context.Context, consultationID string) ([]media.TrackRecord, error)
	ActiveCalls() int
	Close() error
	Crash()
}

// engineFactory builds the engine once the store and registry exist; tests swap
// in a fake, Start always uses the real one.
type engineFactory func(ecfg engineConfig, cat media.Catalog) (engine, error)

// engineConfig mirrors media.Config so the fake engine needs no media types.
type engineConfig struct {
	DataDir      string
	UDPPort      int
	ListenIP     string
	AdvertisedIP string
	RecordFormat string
	Bugs         *bugs.Set
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Server is a running clinic.
type Server struct {
	cfg      Config
	log      *slog.Logger
	bugs     *bugs.Set
	db       *store
	eng      engine
	reg      *prometheus.Registry
	met      *metrics
	cache    *listCache
	locks    *callLocks
	handler  http.Handler
	mux      *http.ServeMux
	patterns []string // registered routes, for the OpenAPI check
	tokens   tokenCache
	ln       net.Listener
	http     *http.Server
	served   chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// Start opens (or reopens) the data directory, recovers recordings a previous
// run left unfinished, starts the media engine and serves HTTP. The server is
// listening when Start returns. ctx bounds startup only; stop the server with
// Close (graceful) or Crash (abrupt).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	return start(ctx, cfg, realEngine)
}

func start(ctx context.Context, cfg Config, newEngine engineFactory) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("clinic: data directory is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.AdvertisedIP == "" {
		cfg.AdvertisedIP = "127.0.0.1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	bs, err := bugs.Parse(cfg.Bugs, cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("clinic: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("clinic: create data directory: %w", err)
	}
	db, err := openStore(ctx, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("clinic: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		bugs:   bs,
		db:     db,
		reg:    prometheus.NewRegistry(),
		cache:  newListCache(listCacheTTL),
		locks:  &callLocks{},
		served: make(chan struct{}),
	}
	s.met = newMetrics(s.reg, func() int {
		if s.eng == nil {
			return 0
		}
		return s.eng.ActiveCalls()
	})
	if err := s.recover(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("clinic: recover data: %w", err)
	}
	s.eng, err = newEngine(engineConfig{
		DataDir:      cfg.DataDir,
		UDPPort:      cfg.UDPPort,
		ListenIP:     cfg.ListenIP,
		AdvertisedIP: cfg.AdvertisedIP,
		RecordFormat: cfg.RecordFormat,
		Bugs:         bs,
		Logger:       cfg.Logger.With("component", "media"),
		Registerer:   s.reg,
	}, catalog{store: db, cache: s.cache})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("clinic: start media engine: %w", err)
	}
	registerRuntime(s.reg)
	s.handler = s.routes()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		s.eng.Crash()
		db.Close()
		return nil, fmt.Errorf("clinic: listen on %s: %w", cfg.Addr, err)
	}
	s.ln = ln
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.served)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	s.log.Info("clinic started", "url", s.URL(), "udp_port", s.eng.UDPPort(), "data", cfg.DataDir, "bugs", bs.String())
	return s, nil
}

// URL is the HTTP base URL, e.g. "http://127.0.0.1:PORT".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Handler is the HTTP handler (for tests that drive it without a socket).
func (s *Server) Handler() http.Handler { return s.handler }

// UDPPort is the media port in use.
func (s *Server) UDPPort() int { return s.eng.UDPPort() }

// Close stops gracefully: drains HTTP, lets the engine finalise open track
// files, then closes the database. Calls stay active in the database so their
// participants can rejoin after a restart.
func (s *Server) Close() error {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var errs []error
		if err := s.http.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain http: %w", err))
			s.http.Close()
		}
		<-s.served
		if err := s.eng.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close media engine: %w", err))
		}
		if err := s.db.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close database: %w", err))
		}
		s.stopErr = errors.Join(errs...)
		s.log.Info("clinic stopped", "graceful", true)
	})
	return s.stopErr
}

// Crash stops as abruptly as an in-process server can: the engine drops its
// calls without finalising, HTTP connections are cut, the database is closed
// under whoever is using it.
func (s *Server) Crash() error {
	s.stopOnce.Do(func() {
		s.eng.Crash()
		s.http.Close()
		<-s.served
		s.stopErr = s.db.Close()
		s.log.Info("clinic stopped", "graceful", false)
	})
	return s.stopErr
}

// recover runs before the engine starts: tracks of recordings that were never
// finalised (the previous run crashed mid-call) get their counts from the files,
// which is what survived; recordings whose consultation ended but which were
// not marked ready are finalised now.
func (s *Server) recover(ctx context.Context) error {
	tracks, err := s.db.unfinishedTracks(ctx)
	if err != nil {
		return err
	}
	for _, t := range tracks {
		frames, size, err := recount(t.Path, t.Format)
		if err != nil {
			// Missing or not Ogg/IVF at all (a torn last frame is no error):
			// keep the last progress the engine reported.
			s.log.Warn("recount track", "track", t.ID, "path", t.Path, "err", err)
			continue
		}
		if err := s.db.TrackProgress(t.ID, frames, size); err != nil {
			return err
		}
	}
	ended, err := s.db.endedUnfinalised(ctx)
	if err != nil {
		return err
	}
	for _, rid := range ended {
		if err := s.db.finalise(ctx, rid, nil); err != nil {
			return err
		}
		s.met.finalised.Inc()
	}
	if len(tracks)+len(ended) > 0 {
		s.log.Info("recovered unfinished recordings", "tracks_recounted", len(tracks), "recordings_finalised", len(ended))
	}
	return nil
}

// catalog is what the engine writes to: the store, plus cache invalidation
// when the recorder grants someone access.
type catalog struct {
	*store
	cache *listCache
}

func (c catalog) GrantAccess(recordingID, userID string) error {
	err := c.store.GrantAccess(recordingID, userID)
	c.cache.invalidate(userID)
	return err
}

// callLocks serialises end against join and switch of the same consultation
// (joins and switches of one call may run together), so an end never races a
// join into a call the engine has already torn down.
type callLocks struct {
	stripes [256]sync.RWMutex
}

func (l *callLocks) of(id string) *sync.RWMutex {
	var h uint32 = 2166136261
	for i := 0; i < len(id); i++ {
		h = (h ^ uint32(id[i])) * 16777619
	}
	return &l.stripes[h%uint32(len(l.stripes))]
}
