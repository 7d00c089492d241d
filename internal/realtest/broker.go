package realtest

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/thresher-ml/thresher/internal/broker"
)

// Broker starts an embedded broker on a random loopback port with the given
// topics, each of partitions partitions, and a consumer-group session
// timeout as low as 1 s. The test's cleanup closes it.
func Broker(tb testing.TB, partitions int, topics ...string) *broker.Broker {
	tb.Helper()
	b, err := broker.Start(broker.Config{
		Addr: "127.0.0.1:0", Partitions: partitions, Topics: topics,
		GroupMinSessionTimeout: time.Second,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// Consume reads n records of topic from the start, failing after 10 s or
// when more than n are there.
func Consume(tb testing.TB, addr, topic string, n int) []*kgo.Record {
	tb.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			tb.Fatalf("consumed %d of %d records from %s: %v", len(recs), n, topic, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) { tb.Fatalf("fetch: %v", err) })
		recs = append(recs, fs.Records()...)
	}
	// Nothing beyond what was expected.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if extra := cl.PollFetches(ctx2).Records(); len(extra) > 0 {
		tb.Fatalf("%d records beyond the %d expected in %s", len(extra), n, topic)
	}
	return recs
}
