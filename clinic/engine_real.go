package clinic

import "github.com/telechaos/telechaos/clinic/media"

var _ engine = (*media.Engine)(nil)

func realEngine(c engineConfig, cat media.Catalog) (engine, error) {
	return media.New(media.Config{
		DataDir:      c.DataDir,
		UDPPort:      c.UDPPort,
		ListenIP:     c.ListenIP,
		AdvertisedIP: c.AdvertisedIP,
		RecordFormat: c.RecordFormat,
		Bugs:         c.Bugs,
		Logger:       c.Logger,
		Registerer:   c.Registerer,
	}, cat)
}

// recount counts a track file's whole frames after a crash and cuts off a torn
// last frame, so replays serve files Ogg/IVF readers accept.
var recount = media.Repair
