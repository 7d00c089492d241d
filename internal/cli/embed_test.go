package cli

import (
	"context"
	"encoding/json"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thresher-ml/thresher/internal/curatetest"
	"github.com/thresher-ml/thresher/internal/lake"
	"github.com/thresher-ml/thresher/internal/realtest"
	"github.com/thresher-ml/thresher/train"
)

type taskRow struct {
	ID    json.RawMessage `json:"id"`
	Label json.RawMessage `json:"label"`
	Text  string          `json:"text"`
}

func readTask(t *testing.T, path string) []taskRow {
	t.Helper()
	var rows []taskRow
	for _, line := range realtest.Lines(t, path, 0) {
		var r taskRow
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	return rows
}

type outRow struct {
	ID        json.RawMessage `json:"id"`
	Label     json.RawMessage `json:"label"`
	Embedding []float32       `json:"embedding"`
}

func readOut(t *testing.T, data string) []outRow {
	t.Helper()
	var rows []outRow
	for _, l := range strings.Split(strings.TrimSpace(data), "\n") {
		var r outRow
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		rows = append(rows, r)
	}
	return rows
}

// TestTrainThenEmbed trains a small model with `thresher train` on a lake
// of real records, then embeds a labeled task file with `thresher embed`
// and checks the vectors against the trainer's /v1/embed on the same
// checkpoint.
func TestTrainThenEmbed(t *testing.T) {
	task := realtest.Data(t, "tasks/debian_section/dev.jsonl.gz")
	lakeDir, _ := curatetest.Lake(t, 3000, 3000)
	code, out, stderr := run(t, "train", "--config", "testdata/config/train-good.yaml", "--lake", lakeDir, "--max-steps", "40", "--progress", "10ms")
	if code != ExitOK {
		t.Fatalf("train: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "train: step=40 ") || !strings.Contains(out, "checkpoint_step=40 ") || !strings.Contains(out, "peak_rss_mb=") {
		t.Fatalf("train output %q", out)
	}
	if !strings.Contains(stderr, "train: step ") || !strings.Contains(stderr, "eta ") {
		t.Fatalf("no progress lines on stderr: %s", stderr)
	}

	outPath := filepath.Join(t.TempDir(), "emb.jsonl")
	code, _, stderr = run(t, "embed", "--checkpoint", lakeDir, "--in", task, "--out", outPath)
	if code != ExitOK {
		t.Fatalf("embed: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	in, got := readTask(t, task), readOut(t, string(data))
	if len(got) != len(in) {
		t.Fatalf("%d output lines for %d inputs", len(got), len(in))
	}
	for i := range in {
		if string(got[i].ID) != string(in[i].ID) || string(got[i].Label) != string(in[i].Label) {
			t.Fatalf("line %d: id %s label %s, want %s %s", i, got[i].ID, got[i].Label, in[i].ID, in[i].Label)
		}
		var n float64
		for _, x := range got[i].Embedding {
			n += float64(x) * float64(x)
		}
		if len(got[i].Embedding) != 16 || math.Abs(n-1) > 1e-4 {
			t.Fatalf("line %d: %d dims, squared norm %v", i, len(got[i].Embedding), n)
		}
	}

	// The same vectors as the trainer's /v1/embed, resumed from CURRENT.
	var cfg train.ServiceConfig
	if err := loadYAML("testdata/config/train-good.yaml", &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Lake = lakeDir
	store, err := lake.OpenDir(lakeDir)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := train.NewTrainer(context.Background(), cfg, store, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	for start := 0; start < len(in); start += 64 {
		end := min(start+64, len(in))
		var texts []string
		for _, r := range in[start:end] {
			texts = append(texts, r.Text)
		}
		body, _ := json.Marshal(train.EmbedRequest{Texts: texts})
		req := httptest.NewRequest("POST", "/v1/embed", strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		tr.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("/v1/embed: %d %s", rec.Code, rec.Body.String())
		}
		var resp train.EmbedResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatal(err)
		}
		for i, v := range resp.Embeddings {
			for j := range v {
				if v[j] != got[start+i].Embedding[j] {
					t.Fatalf("text %d: thresher embed and /v1/embed differ at dim %d: %v vs %v", start+i, j, got[start+i].Embedding[j], v[j])
				}
			}
		}
	}

	// A checkpoint file and plain text lines: ids are line numbers.
	keys, err := train.NewCheckpointStore(store, 2, nil).Keys(context.Background())
	if err != nil || len(keys) == 0 {
		t.Fatalf("checkpoints: %v %v", keys, err)
	}
	plain := filepath.Join(t.TempDir(), "plain.txt")
	if err := os.WriteFile(plain, []byte("first line\n\nthird line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = run(t, "embed", "--checkpoint", filepath.Join(lakeDir, filepath.FromSlash(keys[len(keys)-1])), "--in", plain)
	if code != ExitOK {
		t.Fatalf("embed of plain text: exit %d: %s", code, stderr)
	}
	rows := readOut(t, out)
	if len(rows) != 2 || string(rows[0].ID) != "1" || string(rows[1].ID) != "3" || rows[0].Label != nil {
		t.Fatalf("plain text output: %s", out)
	}
}

func TestEmbedBadUsage(t *testing.T) {
	dir := t.TempDir()
	torn := filepath.Join(dir, "torn.ckpt")
	if err := os.WriteFile(torn, []byte("THRCKPT\x00 not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"embed"}, "--checkpoint is required; --in is required"},
		{[]string{"embed", "--checkpoint", "/no/such.ckpt", "--in", in}, "no such file"},
		{[]string{"embed", "--checkpoint", torn, "--in", in}, "corrupt checkpoint"},
		{[]string{"embed", "--checkpoint", dir, "--in", in}, "not a lake with checkpoints"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != ExitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, want %d saying %q: %s", tc.args, code, ExitUsage, tc.want, stderr)
		}
	}
}
