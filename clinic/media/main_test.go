package media

import (
	"testing"

	"go.uber.org/goleak"
)

// Every PeerConnection, reader and progress loop must be gone after the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
