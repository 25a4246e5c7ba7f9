// Command lanyard is the lanyard admission webhook and its offline twin: see `lanyard --help`.
package main

import (
	"os"

	"github.com/lanyard-dev/lanyard/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
