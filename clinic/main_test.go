package clinic

import (
	"testing"

	"go.uber.org/goleak"
)

// No PeerConnection, HTTP connection or database goroutine outlives the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
