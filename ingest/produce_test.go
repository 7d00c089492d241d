package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"

	"github.com/thresher-ml/thresher/internal/broker"
	"github.com/thresher-ml/thresher/internal/realtest"
)

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestProduce produces through the exported API, plain and gzipped, in both
// formats, and checks the stats, the keys and the progress lines.
func TestProduce(t *testing.T) {
	input := "{\"id\":\"a\",\"text\":\"x\"}\n\n{\"id\":7}\r\n  \nnot json\n{\"id\":\"last\"}"
	values := map[string]string{ // value -> key with FormatJSON; "" = none
		`{"id":"a","text":"x"}`: "a",
		`{"id":7}`:              "7",
		`not json`:              "",
		`{"id":"last"}`:         "last",
	}
	var valueBytes int64
	for v := range values {
		valueBytes += int64(len(v))
	}
	for _, tc := range []struct {
		name   string
		format Format
		gzip   bool
	}{
		{"format=json", FormatJSON, false},
		{"format=json/gzip", FormatJSON, true},
		{"format=text", FormatText, false},
		{"format=text/gzip", FormatText, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := realtest.Broker(t, 3, "t")
			// Produce leaves no goroutine behind (the broker's own connection
			// handlers end when it notices the close, in their own time).
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
				goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).read"),
				goleak.IgnoreAnyFunction("github.com/twmb/franz-go/pkg/kfake.(*clientConn).write"))
			in := []byte(input)
			if tc.gzip {
				in = gzipBytes(t, in)
			}
			// The reader waits a little before the end, so progress lines
			// get written.
			pr, pw := io.Pipe()
			go func() {
				pw.Write(in[:len(in)/2])
				time.Sleep(30 * time.Millisecond)
				pw.Write(in[len(in)/2:])
				pw.Close()
			}()
			var progress bytes.Buffer
			st, err := Produce(context.Background(), ProduceConfig{
				Brokers:       []string{b.Addr()},
				Topic:         "t",
				Format:        tc.format,
				Progress:      &progress,
				ProgressEvery: 5 * time.Millisecond,
			}, pr)
			if err != nil {
				t.Fatal(err)
			}
			if st.Records != int64(len(values)) || st.Bytes != valueBytes || st.Elapsed <= 0 {
				t.Errorf("stats %+v, want %d records, %d bytes, some time", st, len(values), valueBytes)
			}
			if st.Rate() <= 0 {
				t.Errorf("rate %v", st.Rate())
			}
			if !regexp.MustCompile(`^(produce: \d+ records, \d+ rec/s, [0-9.]+ MB/s\n)+$`).Match(progress.Bytes()) {
				t.Errorf("progress %q", progress.String())
			}
			for _, r := range realtest.Consume(t, b.Addr(), "t", len(values)) {
				key, ok := values[string(r.Value)]
				if !ok {
					t.Fatalf("unexpected value %q", r.Value)
				}
				if tc.format == FormatText {
					key = ""
				}
				if string(r.Key) != key || (key == "" && r.Key != nil) {
					t.Errorf("value %q: key %q, want %q", r.Value, r.Key, key)
				}
			}
		})
	}
}

func TestProduceConfigValidate(t *testing.T) {
	valid := ProduceConfig{Brokers: []string{"127.0.0.1:9092"}, Topic: "t"}
	for _, tc := range []struct {
		name string
		edit func(*ProduceConfig)
		want []string // substrings of the error; nil = valid
	}{
		{"valid", func(*ProduceConfig) {}, nil},
		{"text", func(c *ProduceConfig) { c.Format = FormatText }, nil},
		{"no brokers", func(c *ProduceConfig) { c.Brokers = nil }, []string{"brokers: at least one"}},
		{"empty broker", func(c *ProduceConfig) { c.Brokers = []string{"a:1", " "} }, []string{"brokers: an empty address"}},
		{"no topic", func(c *ProduceConfig) { c.Topic = "" }, []string{"topic: a topic is required"}},
		{"bad format", func(c *ProduceConfig) { c.Format = 7 }, []string{"format: Format(7) must be json or text"}},
		{"negative", func(c *ProduceConfig) {
			c.ProgressEvery, c.Linger, c.MaxBufferedBytes, c.MaxBufferedRecords = -1, -1, -1, -1
		}, []string{"progress_every", "linger", "max_buffered_bytes", "max_buffered_records"}},
		{"every problem at once", func(c *ProduceConfig) { *c = ProduceConfig{Format: 2} },
			[]string{"brokers:", "topic:", "format:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.edit(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate = %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			// Produce refuses it before reading or dialing anything.
			if _, err := Produce(context.Background(), c, unreadReader{t}); !errors.Is(err, ErrConfig) {
				t.Errorf("Produce = %v, want ErrConfig", err)
			}
		})
	}
}

// unreadReader is a reader that fails the test when read.
type unreadReader struct{ t *testing.T }

func (r unreadReader) Read([]byte) (int, error) {
	r.t.Error("input read")
	return 0, io.EOF
}

func TestProduceNoBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	_, err = Produce(context.Background(), ProduceConfig{Brokers: []string{addr}, Topic: "t"},
		strings.NewReader("{\"id\":1}\n"))
	if !errors.Is(err, ErrNoBroker) {
		t.Fatalf("err = %v, want ErrNoBroker", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "no broker reachable at "+addr+" within 10s: ") {
		t.Errorf("message %q should name the broker %s", msg, addr)
	}
}

func TestProduceCanceled(t *testing.T) {
	b := realtest.Broker(t, 1, "c")
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fmt.Fprintln(pw, `{"id":"x"}`)
		cancel()
		// The producer stops reading; unblock it by closing the pipe
		// only after a while, to prove it stops on the context alone.
		time.Sleep(100 * time.Millisecond)
		pw.Close()
	}()
	_, err := Produce(ctx, ProduceConfig{Brokers: []string{b.Addr()}, Topic: "c"}, pr)
	wg.Wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestProduceJSONID(t *testing.T) {
	for _, tc := range []struct {
		line string
		key  string // "-" = no key
	}{
		{`{"id":"a"}`, "a"},
		{`  { "id" : "spaced" , "x":1}`, "spaced"},
		{`{"id":""}`, ""},
		{`{"id":12}`, "12"},
		{`{"id":-1.5e3,"t":"x"}`, "-1.5e3"},
		{`{"text":"x","id":"later"}`, "later"},
		{`{"text":"has \"id\": \"fake\"","id":"real"}`, "real"},
		{`{"meta":{"id":"nested"},"id":"top"}`, "top"},
		{`{"meta":{"id":"nested"}}`, "-"},
		{`{"list":[1,{"id":"x"},"]"],"id":"after-array"}`, "after-array"},
		{`{"id":"esc\"aped\u00e9"}`, "esc\"apedé"},
		{`{"\u0069d":"escaped-key"}`, "escaped-key"},
		{`{"id":true}`, "-"},
		{`{"id":null}`, "-"},
		{`{"id":{"a":1}}`, "-"},
		{`{"idx":"no"}`, "-"},
		{`{"i":"no"}`, "-"},
		{`["id","a"]`, "-"},
		{`"id"`, "-"},
		{`plain text`, "-"},
		{``, "-"},
		{`{"id":"unterminated`, "-"},
		{`{"x":tru,"id":"ok"}`, "ok"}, // no validation beyond what it reads
		{`{"x" 1,"id":"a"}`, "-"},
		{`{"id":"first","id":"second"}`, "first"},
	} {
		got := jsonID([]byte(tc.line))
		if tc.key == "-" {
			if got != nil {
				t.Errorf("jsonID(%s) = %q, want no key", tc.line, got)
			}
			continue
		}
		if got == nil || string(got) != tc.key {
			t.Errorf("jsonID(%s) = %q, want %q", tc.line, got, tc.key)
		}
	}
}

// FuzzProduceJSONID checks jsonID against encoding/json on valid objects
// with at most one top-level "id".
func FuzzProduceJSONID(f *testing.F) {
	for _, s := range []string{`{"id":"a"}`, `{"x":[1,{"id":2}],"id":3}`, `{"id":"\u00e9\n"}`, `{"a":"b"}`, `[]`, `{"id":1e5}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := jsonID([]byte(s)) // must not panic on anything
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		if countTopLevelIDs(s) > 1 {
			return
		}
		raw, ok := m["id"]
		var key []byte
		if ok {
			var str string
			var num json.Number
			switch {
			case json.Unmarshal(raw, &str) == nil:
				key = []byte(str)
			case json.Unmarshal(raw, &num) == nil:
				key = []byte(num.String())
			}
		}
		if (key == nil) != (got == nil) || !bytes.Equal(key, got) {
			t.Fatalf("jsonID(%s) = %q, encoding/json says %q", s, got, key)
		}
	})
}

func countTopLevelIDs(s string) int {
	dec := json.NewDecoder(strings.NewReader(s))
	depth, n, expectKey := 0, 0, false
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			expectKey = depth == 1 && v == '{'
			continue
		case string:
			if depth == 1 && expectKey && v == "id" {
				n++
			}
		}
		// After a key comes a value, after a top-level value a key.
		if depth == 1 {
			expectKey = !expectKey
		}
	}
}

func TestProduceLineReader(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	long := strings.Repeat("x", 700<<10) // longer than the read buffer
	in := "a\n\n  \r\nb\r\n" + long + "\nc"
	for _, gz := range []bool{false, true} {
		data := []byte(in)
		if gz {
			data = gzipBytes(t, data)
		}
		lr, err := newLineReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for {
			l, err := lr.next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(l))
		}
		lr.Close()
		wantLines := []string{"a", "b", long, "c"}
		if len(got) != len(wantLines) {
			t.Fatalf("gzip=%v: %d lines, want %d", gz, len(got), len(wantLines))
		}
		for i := range wantLines {
			if got[i] != wantLines[i] {
				t.Errorf("gzip=%v line %d: %.20q..., want %.20q...", gz, i, got[i], wantLines[i])
			}
		}
	}
	if _, err := newLineReader(bytes.NewReader([]byte{0x1f, 0x8b, 0})); err == nil {
		t.Error("truncated gzip header: want an error")
	}

	// A truncated gzip body is an error, not a short stream.
	gz := gzipBytes(t, bytes.Repeat([]byte("a line of text\n"), 100000))
	lr, err := newLineReader(bytes.NewReader(gz[:len(gz)/2]))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = lr.next()
	}
	if errors.Is(err, io.EOF) {
		t.Errorf("truncated gzip read to a clean EOF")
	}
	lr.Close()

	// Closing early stops the decompressing goroutine (Close waits for it).
	lr, err = newLineReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lr.next(); err != nil {
		t.Fatal(err)
	}
	lr.Close()
	lr.Close()
}

// BenchmarkProduce produces the real stream (decompressed in memory
// beforehand) into an in-process embedded broker with Produce, which uses
// kgo, and, for comparison, with kafka-go's Writer tuned the same way (5 ms
// batch timeout, 1 MB batches, acks all, murmur2, async with a bound on
// records in flight so memory stays bounded and order kept). It is why
// Produce uses kgo. Run:
//
//	go test ./ingest/ -run XXX -bench BenchmarkProduce -benchtime 3x -count 5 | tee new.txt
//	benchstat new.txt
func BenchmarkProduce(b *testing.B) {
	path := realtest.Corpus(b)
	lines := realtest.CorpusLines(b, 0)
	var in bytes.Buffer
	for _, l := range lines {
		in.Write(l)
		in.WriteByte('\n')
	}
	lines = nil
	data := in.Bytes()
	gz, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ input, client string }{
		{"memory", "kgo"},
		{"memory", "kafka-go"},
		{"gzip", "kgo"}, // what "thresher produce stream.jsonl.gz" does
	} {
		b.Run("input="+bc.input+"/client="+bc.client, func(b *testing.B) {
			b.ReportAllocs()
			var n, nb int64
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				br, err := broker.Start(broker.Config{Partitions: 4, Topics: []string{"records"}})
				if err != nil {
					b.Fatal(err)
				}
				r := bytes.NewReader(data)
				if bc.input == "gzip" {
					r = bytes.NewReader(gz)
				}
				b.StartTimer()
				start := time.Now()
				var got, gotBytes int64
				if bc.client == "kgo" {
					var st ProduceStats
					st, err = Produce(context.Background(), ProduceConfig{Brokers: []string{br.Addr()}, Topic: "records"}, r)
					got, gotBytes = st.Records, st.Bytes
				} else {
					got, gotBytes, err = produceKafkaGo(context.Background(), br.Addr(), "records", r)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				br.Close()
				b.StartTimer()
				if err != nil {
					b.Fatal(err)
				}
				n += got
				nb += gotBytes
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "rec/s")
			b.ReportMetric(float64(nb)/elapsed.Seconds()/1e6, "MB/s")
		})
	}
}

// produceKafkaGo is Produce on kafka-go's Writer, for BenchmarkProduce.
func produceKafkaGo(ctx context.Context, addr, topic string, r io.Reader) (n, nbytes int64, err error) {
	lr, err := newLineReader(r)
	if err != nil {
		return 0, 0, err
	}
	defer lr.Close()
	const inflight = 256 << 10
	sem := make(chan struct{}, inflight)
	var mu sync.Mutex
	var firstErr error
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:                   kafka.TCP(addr),
		Topic:                  topic,
		Balancer:               &kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		BatchTimeout:           5 * time.Millisecond,
		BatchSize:              100_000,
		BatchBytes:             1_000_000,
		AllowAutoTopicCreation: true,
		Async:                  true,
		Transport:              tr,
		Completion: func(msgs []kafka.Message, err error) {
			mu.Lock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			if err == nil {
				n += int64(len(msgs))
				for _, m := range msgs {
					nbytes += int64(len(m.Value))
				}
			}
			mu.Unlock()
			for range msgs {
				<-sem
			}
		},
	}
	chunk := make([]kafka.Message, 0, 1024)
	flush := func() error {
		for range chunk {
			sem <- struct{}{}
		}
		err := w.WriteMessages(ctx, chunk...)
		chunk = make([]kafka.Message, 0, 1024)
		return err
	}
	for {
		line, rerr := lr.next()
		if rerr != nil {
			break
		}
		chunk = append(chunk, kafka.Message{Key: jsonID(line), Value: line})
		if len(chunk) == cap(chunk) {
			if err := flush(); err != nil {
				return n, nbytes, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, nbytes, err
	}
	if err := w.Close(); err != nil {
		return n, nbytes, err
	}
	mu.Lock()
	defer mu.Unlock()
	return n, nbytes, firstErr
}
