// Command load is `make load`: a mixed workload (list, get, picker,
// create, update, test, run start) against a running `make dev` at rising
// concurrency, printing per route the requests per second, p50, p99 and
// the count of each status. Loopback only; each level bounded in time and
// in requests. It exits non-zero when an answer broke the overload
// contract (a 5xx other than 503, a 429 or 503 without Retry-After).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/connmgr/connmgr/local/loadgen"
)

func main() {
	var cfg loadgen.Config
	levels := "1,4,16,64"
	flag.StringVar(&cfg.URL, "url", "http://127.0.0.1:3000", "the API of a running make dev (loopback only)")
	flag.StringVar(&levels, "levels", levels, "concurrencies to run, one after another")
	flag.DurationVar(&cfg.Duration, "duration", 10*time.Second, "time at each level")
	flag.IntVar(&cfg.Requests, "requests", 20000, "most requests at each level")
	flag.IntVar(&cfg.Connections, "connections", 40, "shared connections the member sees")
	flag.IntVar(&cfg.Sites, "sites", 4, "sites they are spread over (the member can reach all)")
	flag.Parse()
	for _, s := range strings.Split(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1000 {
			fmt.Fprintf(os.Stderr, "load: bad level %q (1 to 1000)\n", s)
			os.Exit(2)
		}
		cfg.Levels = append(cfg.Levels, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Printf("load: %s, %s %s/%s, %d CPUs, %s\n", cfg.URL, runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	results, err := loadgen.Run(ctx, cfg, func(r loadgen.LevelResult) { loadgen.Format(os.Stdout, r) })
	if err == nil {
		err = loadgen.Check(results)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}
