package chaos

import (
	"testing"

	"go.uber.org/goleak"
)

// Every fault must leave nothing behind: proxies, pumps, delay lines, clinics.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
