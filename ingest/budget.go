package ingest

// Budget is how a member shares its memory_limit among the partitions it
// holds in one generation. Each partition holds at once about two fetch
// responses (one being decoded while the client fetches the next), its open
// span (whose Arrow buffers grow by doubling, so up to twice its bytes) and
// the span being committed with its Parquet encoding. The rule:
//
//	reserve  = min(64MiB, memory_limit/4)          runtime, clients, group
//	share    = (memory_limit - reserve) / 2 / partitions
//	fetch    = clamp(share/6, 64KiB, fetch_max_bytes)
//	roll     = clamp(share/6, 64KiB, roll_bytes)
//
// Half of what is left after the reserve is live data, the other half the
// garbage collector's room to work under the soft limit. fetch_max_bytes
// and roll_bytes are upper bounds: a member with few partitions uses them
// as configured (4 partitions under the default 512MiB budget: 56MiB a
// share). A record larger than its partition's fetch still lands whole:
// the broker always returns the first batch of a fetch complete, and the
// client accepts responses of up to max(fetch_max_bytes, max_value_bytes)
// plus 1MiB, and at least 100MiB.
type Budget struct {
	Partitions int
	Share      int64 // bytes a partition may hold
	FetchBytes int32 // fetch size of one partition
	RollBytes  int   // a span is sealed at this many bytes
}

// Floors and the reserve of the budget rule.
const (
	budgetReserve  = 64 << 20
	minFetchBytes  = 64 << 10
	minRollBytes   = 64 << 10
	spanShareParts = 6 // two fetches, open span (x2), committed span and its encoding
)

// BudgetFor returns the memory budget of a member holding partitions
// partitions under cfg.
func BudgetFor(cfg Config, partitions int) Budget {
	partitions = max(partitions, 1)
	limit := int64(cfg.MemoryLimit)
	share := (limit - min(budgetReserve, limit/4)) / 2 / int64(partitions)
	part := share / spanShareParts
	return Budget{
		Partitions: partitions,
		Share:      share,
		FetchBytes: int32(min(max(part, minFetchBytes), int64(cfg.FetchMaxBytes))),
		RollBytes:  int(min(max(part, minRollBytes), int64(cfg.RollBytes))),
	}
}
