package deploy

import "errors"

var (
	// ErrNoDocker means no Docker engine answered (socket missing, engine
	// down, API too old). Tests skip on it outside CI.
	ErrNoDocker = errors.New("deploy: no docker engine")

	// ErrInvalidOption means an option or argument given to Run, Sweep or
	// BuildClinicImage is unusable; the message names it.
	ErrInvalidOption = errors.New("deploy: invalid option")

	// ErrBuild means building the clinic binary or its image failed; the
	// message carries the compiler's or the engine's output.
	ErrBuild = errors.New("deploy: build failed")

	// ErrStart means the container was created but did not become healthy
	// (GET /healthz) in time, or its ports were not published as required.
	// The message ends with the tail of the container's logs.
	ErrStart = errors.New("deploy: container did not start")

	// ErrImageNotFound means the image is not in the local engine. Run
	// never lets the engine pull one (testcontainers would try a registry):
	// build it first (make image).
	ErrImageNotFound = errors.New("deploy: image not found in the local docker engine")

	// ErrTerminated means a chaos primitive was called after Terminate.
	ErrTerminated = errors.New("deploy: deployment terminated")
)
