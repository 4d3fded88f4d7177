//go:build !mediaengine

package clinic

import (
	"errors"

	"telechaos/clinic/media"
)

// Temporary until clinic/media's engine lands.
func realEngine(c engineConfig, cat media.Catalog) (engine, error) {
	return nil, errors.New("media engine not built")
}

func recount(path, format string) (int64, int64, error) { return 0, 0, errors.New("no recount") }
