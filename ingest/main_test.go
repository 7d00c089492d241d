package ingest_test

import (
	"testing"

	"github.com/thresher-ml/thresher/internal/realtest"
)

func TestMain(m *testing.M) { realtest.Main(m) }
