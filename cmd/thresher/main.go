// Command thresher turns unlabeled records streaming through Kafka into a
// curated Parquet lake and, from it, better models. Run "thresher help".
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/thresher-ml/thresher/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
