//go:build mediaengine

package clinic

import "telechaos/clinic/media"

var _ engine = (*media.Engine)(nil)

func realEngine(c engineConfig, cat media.Catalog) (engine, error) {
	return media.New(media.Config{
		DataDir:      c.DataDir,
		UDPPort:      c.UDPPort,
		ListenIP:     c.ListenIP,
		AdvertisedIP: c.AdvertisedIP,
		Bugs:         c.Bugs,
		Logger:       c.Logger,
		Registerer:   c.Registerer,
	}, cat)
}

// recount reads a track file's frame count and size (crash recovery).
var recount = media.Recount
