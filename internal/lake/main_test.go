package lake

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a test leaves goroutines behind (the Encoder's
// workers, say).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
