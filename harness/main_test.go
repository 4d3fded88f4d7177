package harness

import (
	"testing"

	"go.uber.org/goleak"
)

// Every run must leave nothing behind: patients, peers, the embedded clinic,
// the metrics server, idle HTTP connections.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
