// Command draws prints the label draws of `thresher eval` for a task as
// JSON, so that a reference implementation outside Go (scripts/tfidf-reference.py)
// fits on exactly the same examples:
//
//	go run ./scripts/draws --task DIR --labels-per-class 16,64 --draws 5 > draws.json
//
// The output is {"classes": [...], "draws": {"16": [[train indexes], ...], ...}},
// the indexes into the task's train split in file order.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/thresher-ml/thresher/eval"
)

func main() {
	task := flag.String("task", "", "task folder (train, dev, test splits)")
	labels := flag.String("labels-per-class", "16,64", "labels per class, comma-separated")
	draws := flag.Int("draws", 5, "draws per labels-per-class value")
	seed := flag.Uint64("seed", 1, "seed of the draws (thresher eval's --seed)")
	flag.Parse()
	if err := run(*task, *labels, *draws, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "draws:", err)
		os.Exit(1)
	}
}

func run(dir, labels string, draws int, seed uint64) error {
	ls, err := eval.ParseLabelsPerClass(labels)
	if err != nil {
		return err
	}
	t, err := eval.LoadTask(dir)
	if err != nil {
		return err
	}
	out := struct {
		Classes []string           `json:"classes"`
		Draws   map[string][][]int `json:"draws"`
	}{Classes: t.Classes, Draws: map[string][][]int{}}
	for _, l := range ls {
		for d := range draws {
			out.Draws[l.String()] = append(out.Draws[l.String()], eval.Draw(t.Train.Labels, len(t.Classes), int(l), seed, d))
		}
	}
	return json.NewEncoder(os.Stdout).Encode(out)
}
