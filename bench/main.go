// Command bench measures the server against baselines in the same run and writes
// docs/PERFORMANCE.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "serve":
		err = serveFixture(os.Args[2:])
	default:
		err = fmt.Errorf("usage: bench serve ADDR DB_PATH HS_TOKEN")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
