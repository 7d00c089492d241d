package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// TestCompactCommand compacts a lake of small raw segments of real records:
// exit 0, fewer segments, and a plain DuckDB glob of raw/ sees each record
// once.
func TestCompactCommand(t *testing.T) {
	lines := realtest.CorpusLines(t, 3000)
	dir := t.TempDir()
	store, err := lake.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	curatetest.WriteRaw(t, store, lines, 3, 50)
	before, _, err := lake.ListSegments(context.Background(), store, schemas.TableRaw)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "compact", "--lake", dir, "--target-size", "1MiB")
	if code != ExitOK || !strings.Contains(stdout, "compact: partitions=3 merged=") {
		t.Fatalf("exit %d: %s %s", code, stdout, stderr)
	}
	after, sup, err := lake.ListSegments(context.Background(), store, schemas.TableRaw)
	if err != nil || len(sup) > 0 || len(after) >= len(before) {
		t.Fatalf("%d segments before, %d after, %d superseded, %v", len(before), len(after), len(sup), err)
	}
	rows := realtest.DuckDB(t, fmt.Sprintf(`SELECT count(*)::INT AS n, count(DISTINCT (partition, "offset"))::INT AS d
		FROM read_parquet('%s')`, filepath.Join(dir, "raw", "**", "*.parquet")))
	if n, d := rows[0]["n"], rows[0]["d"]; n != float64(len(lines)) || d != float64(len(lines)) {
		t.Fatalf("DuckDB sees %v rows, %v distinct offsets; want %d", n, d, len(lines))
	}
}

func TestCompactBadUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compact"}, "--lake is required"},
		{[]string{"compact", "--lake", dir, "--target-size", "10KiB"}, "--target-size 10KiB must be between 1MiB and 1GiB"},
		{[]string{"compact", "--lake", dir, "--target-size", "big"}, `"big" is not a size`},
		{[]string{"compact", "--lake", filepath.Join(dir, "missing")}, "not a lake folder"},
		{[]string{"compact", "--lake", dir, "extra"}, "unexpected arguments"},
	} {
		if code, _, stderr := run(t, tc.args...); code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", tc.args, code, ExitUsage, tc.want, stderr)
		}
	}
}
