package curate_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/schemas"
)

// TestCurateKill9 kills `thresher curate` with SIGKILL at random moments
// (reading, curating, writing tables, writing state), restarts it, and
// checks the tables end exactly as an uninterrupted run leaves them.
func TestCurateKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("subprocess test")
	}
	bin := realtest.Binary(t)
	lines := realtest.CorpusLines(t, 60_000)
	refDir := t.TempDir()
	ref, _ := lake.OpenDir(refDir)
	writeRaw(t, ref, lines, 3, 2000)
	if err := runStage(t, testConfig(refDir, 1500), ref); err != nil {
		t.Fatal(err)
	}
	want := checkAudit(t, ref, len(lines))
	sortAudits(want)

	dir := t.TempDir()
	store, _ := lake.OpenDir(dir)
	writeRaw(t, store, lines, 3, 2000)
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	args := []string{"curate", "--lake", dir, "--window-records", "1500"}
	midRun := 0
	for kill := 1; kill <= 4; kill++ {
		cmd := exec.Command(bin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rng.IntN(300)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		n := len(readAll[schemas.AuditRecord](t, store, schemas.TableAuditRecords))
		t.Logf("kill %d: audit/records holds %d rows", kill, n)
		if n < len(lines) {
			midRun++
		}
	}
	if midRun < 2 {
		t.Fatalf("only %d kills landed before the end of the input; the test needs more work per run", midRun)
	}
	out, err := exec.Command(bin, append(args, "--exit-on-idle", "200ms")...).CombinedOutput()
	if err != nil {
		t.Fatalf("final run: %v: %s", err, out)
	}
	got := checkAudit(t, store, len(lines))
	sortAudits(got)
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Fatalf("row %d differs after the kills:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
