package ingest

import "github.com/twmb/franz-go/pkg/kgo"

// SetPartitionClientOpts adds opts to the options of every partition
// client that in makes.
func SetPartitionClientOpts(in *Ingester, opts ...kgo.Opt) { in.partitionOpts = opts }
