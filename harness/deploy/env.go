package deploy

import "os"

// The testcontainers settings this package depends on. They are forced, not
// defaulted: a Ryuk container cannot be pulled, and the host override keeps
// all traffic on loopback.
var forcedEnv = [...][2]string{
	{"TESTCONTAINERS_RYUK_DISABLED", "true"},
	{"TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1"},
}

// init sets the environment as early as possible because testcontainers reads
// its configuration once per process, at its first use.
func init() { ensureEnv() }

// ensureEnv is also called at the top of every exported function that talks
// to Docker, in case a caller changed the environment after init.
func ensureEnv() {
	for _, kv := range forcedEnv {
		if os.Getenv(kv[0]) != kv[1] {
			_ = os.Setenv(kv[0], kv[1])
		}
	}
}
