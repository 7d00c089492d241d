package eval

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (Evaluate and the
// encoder features run workers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
