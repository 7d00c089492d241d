// Command gen regenerates thresher's bundled demo sample from the real
// stream: it keeps, in stream order, records from the permissive and
// public-domain sources only, up to a quota per source, byte for byte as
// they are in the stream (natural exact duplicates that fall in stay), and
// writes sample.jsonl.gz (gzip -9) into -out.
//
// It also writes the bundled labeled task, task/wordnet_lexname/ under
// -out: of every split of the real task (-tasks), up to 40 train, 12 dev
// and 40 test examples of every class, chosen by the FNV-1a hash of the
// split name and the example's id, kept byte for byte and in file order,
// with a meta.json of the class counts in the real tasks' format.
//
// Last it writes DATA_LICENSES.md, which describes both. The output is
// deterministic.
//
// Run it from internal/sample with go generate, or:
//
//	go run ./internal/sample/gen -corpus ../shared/data/corpus/stream.jsonl.gz -tasks ../shared/data/tasks -out internal/sample
//
// After changing the quotas, update sample.Records to the count it prints.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// source describes one permitted source: the licence column is what the
// data README states.
type source struct {
	name, what, licence string
	quota               int
}

// sources are the only sources the sample may contain, in the order
// DATA_LICENSES.md lists them; the default quotas sum to 20,000.
var defaultSources = []source{
	{"wordnet", "WordNet 3.0 synsets: the words, the gloss and usage examples", "WordNet licence (permissive; notice below)", 6000},
	{"bible-WEB", "World English Bible verses", "public domain", 3000},
	{"bible-KJV", "King James Version verses", "public domain", 3000},
	{"fortunes", "English fortune-cookie files (quotations, jokes)", "BSD / public domain", 2500},
	{"austen", "paragraphs of Jane Austen's novels", "public domain", 1700},
	{"sotu", "State of the Union addresses, 5-sentence passages", "public domain", 1500},
	{"moby_dick", "paragraphs of Herman Melville's Moby-Dick", "public domain", 1000},
	{"dict-jargon", "entries of the Jargon File (hacker slang)", "public domain (the data README lists the dictionaries as \"GFDL / public domain\"; GFDL is FOLDOC's, which the sample excludes)", 800},
	{"dict-devil", "entries of Ambrose Bierce's The Devil's Dictionary (1911)", "public domain", 500},
}

func main() {
	corpus := flag.String("corpus", "../../../shared/data/corpus/stream.jsonl.gz", "the real stream (JSONL, gzipped)")
	out := flag.String("out", ".", "directory to write sample.jsonl.gz and DATA_LICENSES.md into")
	tasks := flag.String("tasks", "../../../shared/data/tasks", "folder of the real labeled tasks")
	quotas := flag.String("quota", "", "per-source quotas overriding the defaults, as source=n,source=n")
	flag.Parse()

	srcs, err := withQuotas(defaultSources, *quotas)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(2)
	}
	st, ts, err := generateAll(*corpus, *tasks, *out, srcs, defaultTask)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d records (%d exact duplicate texts) to %s; set sample.Records = %d\n",
		st.total, st.dups, filepath.Join(*out, "sample.jsonl.gz"), st.total)
	fmt.Printf("wrote task %s: %d classes, train %d / dev %d / test %d\n",
		defaultTask.name, ts.classes, ts.totals["train"], ts.totals["dev"], ts.totals["test"])
}

// generateAll writes the sample, the task and DATA_LICENSES.md into dir
// (the task under dir/task).
func generateAll(corpus, tasks, dir string, srcs []source, task taskSpec) (stats, taskStats, error) {
	st, sizes, err := generate(corpus, dir, srcs)
	if err != nil {
		return st, taskStats{}, err
	}
	ts, err := generateTask(tasks, filepath.Join(dir, "task"), task)
	if err != nil {
		return st, ts, err
	}
	return st, ts, writeFile(filepath.Join(dir, "DATA_LICENSES.md"), licenses(srcs, st, sizes[0], sizes[1], task, ts))
}

func withQuotas(srcs []source, spec string) ([]source, error) {
	out := append([]source(nil), srcs...)
	for _, kv := range strings.Split(spec, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, n, ok := strings.Cut(kv, "=")
		q, err := strconv.Atoi(n)
		if !ok || err != nil || q < 0 {
			return nil, fmt.Errorf("-quota %q: want source=n", kv)
		}
		found := false
		for i := range out {
			if out[i].name == name {
				out[i].quota, found = q, true
			}
		}
		if !found {
			return nil, fmt.Errorf("-quota: %q is not a permitted source", name)
		}
	}
	return out, nil
}

type stats struct {
	total, dups int
	// dups split by kind: across two sources (a verse in both Bible
	// translations), within one source, and with the same id as well.
	crossSource, sameID int
	counts              map[string]int
}

// generate reads corpus and writes the sample to dir; it returns the sizes
// of the sample, gzipped and not.
func generate(corpus, dir string, srcs []source) (stats, [2]int, error) {
	st := stats{counts: map[string]int{}}
	f, err := os.Open(corpus)
	if err != nil {
		return st, [2]int{}, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return st, [2]int{}, fmt.Errorf("%s: %w", corpus, err)
	}
	quota := map[string]int{}
	want := 0
	for _, s := range srcs {
		quota[s.name] = s.quota
		want += s.quota
	}

	var raw bytes.Buffer
	type first struct{ id, source string }
	seen := map[string]first{}
	br := bufio.NewReaderSize(zr, 1<<20)
	for st.total < want {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			var rec struct{ ID, Source, Text string }
			if jerr := json.Unmarshal(line, &rec); jerr != nil {
				return st, [2]int{}, fmt.Errorf("%s: record %q: %w", corpus, bytes.TrimSpace(line[:min(len(line), 80)]), jerr)
			}
			if st.counts[rec.Source] < quota[rec.Source] {
				st.counts[rec.Source]++
				st.total++
				if f, ok := seen[rec.Text]; ok {
					st.dups++
					if f.source != rec.Source {
						st.crossSource++
					}
					if f.id == rec.ID {
						st.sameID++
					}
				} else {
					seen[rec.Text] = first{rec.ID, rec.Source}
				}
				raw.Write(bytes.TrimRight(line, "\n"))
				raw.WriteByte('\n')
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, [2]int{}, fmt.Errorf("%s: %w", corpus, err)
		}
	}
	for _, s := range srcs {
		if st.counts[s.name] < s.quota {
			return st, [2]int{}, fmt.Errorf("%s holds only %d %s records, quota %d", corpus, st.counts[s.name], s.name, s.quota)
		}
	}

	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return st, [2]int{}, err
	}
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return st, [2]int{}, err
	}
	if err := zw.Close(); err != nil {
		return st, [2]int{}, err
	}
	return st, [2]int{gz.Len(), raw.Len()}, writeFile(filepath.Join(dir, "sample.jsonl.gz"), gz.Bytes())
}

// writeFile replaces path atomically.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func licenses(srcs []source, st stats, gzBytes, rawBytes int, task taskSpec, ts taskStats) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# Data licences of the bundled demo sample and labeled task

internal/sample/sample.jsonl.gz holds %d records (%.1f MB of JSON Lines, %.1f MB
gzipped) taken, in stream order and byte for byte, from the project's real
stream (../shared/data/corpus/stream.jsonl.gz; see ../shared/data/README.md).
Only the permissive and public-domain sources below were taken, each up to a
quota. Natural exact duplicates that fell in were kept, so the demo's dedup
has something real to find: %d records repeat the text of an earlier one, %d
of them from another source (a verse worded alike in both Bible
translations), the rest within one source (formulaic verses, a fortune in two
files, a short line of dialogue); %d repeat its id too.

Every record is `+"`"+`{"id", "source", "domain", "lang", "text"}`+"`"+`. The licence
column is what the data README states for the source.

| source | what it is | records | licence |
|---|---|---:|---|
`, st.total, float64(rawBytes)/1e6, float64(gzBytes)/1e6, st.dups, st.crossSource, st.sameID)
	for _, s := range srcs {
		fmt.Fprintf(&b, "| %s | %s | %d | %s |\n", s.name, s.what, st.counts[s.name], s.licence)
	}
	fmt.Fprintf(&b, "| **total** | | **%d** | |\n", st.total)
	b.WriteString(`
No record comes from dict-gcide (GPL), debian, dict-foldoc (GFDL) or appstream.
`)
	fmt.Fprintf(&b, `
## The bundled labeled task

internal/sample/task/%[1]s/ holds a subsample of the real labeled task
../shared/data/tasks/%[1]s (see ../shared/data/README.md):
%[2]s.
Of every split, up to %[3]d train, %[4]d dev and %[5]d test examples of each of its
%[6]d classes were taken (a class with fewer gives all it has), chosen by the
FNV-1a hash of the split name and the example's id, byte for byte and in file
order; meta.json gives the class counts. The real task's splits never share a
synset and none of their texts is in the stream, so none is in the sample
above either (sample's tests check that). `+"`thresher demo`"+` scores its
encoder on it. Licence: %[7]s.

| split | examples | classes | per class, at most | fewest |
|---|---:|---:|---:|---|
`, task.name, task.what, task.quota["train"], task.quota["dev"], task.quota["test"], ts.classes, task.licence)
	for _, split := range taskSplits {
		cls, n := ts.minClass(split)
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %s: %d |\n", split, ts.totals[split], len(ts.counts[split]), task.quota[split], cls, n)
	}
	b.WriteString(`
## Regenerating

From internal/sample, with the real data beside the repository:

    go generate

which runs

    go run ./gen -corpus ../../../shared/data/corpus/stream.jsonl.gz -tasks ../../../shared/data/tasks -out .

The output is deterministic (stream order, fixed quotas; change the sample's
with -quota source=n,...). Then set sample.Records to the count the command
prints; sample's tests check it, the counts above, and the task's meta.json
against its files.

## WordNet licence

The wordnet records and the labeled task come from WordNet 3.0, whose
licence asks that this notice appear on all copies:

    WordNet Release 3.0

    This software and database is being provided to you, the LICENSEE, by
    Princeton University under the following license.  By obtaining, using
    and/or copying this software and database, you agree that you have
    read, understood, and will comply with these terms and conditions.:

    Permission to use, copy, modify and distribute this software and
    database and its documentation for any purpose and without fee or
    royalty is hereby granted, provided that you agree to comply with
    the following copyright notice and statements, including the disclaimer,
    and that the same appear on ALL copies of the software, database and
    documentation, including modifications that you make for internal
    use or for distribution.

    WordNet 3.0 Copyright 2006 by Princeton University.  All rights reserved.

    THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON
    UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES, EXPRESS OR
    IMPLIED.  BY WAY OF EXAMPLE, BUT NOT LIMITATION, PRINCETON
    UNIVERSITY MAKES NO REPRESENTATIONS OR WARRANTIES OF MERCHANT-
    ABILITY OR FITNESS FOR ANY PARTICULAR PURPOSE OR THAT THE USE
    OF THE LICENSED SOFTWARE, DATABASE OR DOCUMENTATION WILL NOT
    INFRINGE ANY THIRD PARTY PATENTS, COPYRIGHTS, TRADEMARKS OR
    OTHER RIGHTS.

    The name of Princeton University or Princeton may not be used in
    advertising or publicity pertaining to distribution of the software
    and/or database.  Title to copyright in this software, database and
    any associated documentation shall at all times remain with
    Princeton University and LICENSEE agrees to preserve same.
`)
	return b.Bytes()
}
