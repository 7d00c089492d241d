package dedup

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any leave a goroutine running
// (the parallel signing in the metamorphic test starts some).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
