package curate_test

import (
	"os"
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	realtest.Cleanup()
	os.Exit(code)
}
