package train

import (
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

// TestMain removes the thresher binary the process tests build.
func TestMain(m *testing.M) { realtest.Main(m) }
