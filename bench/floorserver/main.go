// Command floorserver is SPEC §9's floor (package floor) behind HTTPS as a process of its own,
// linking nothing else, so that its CPU and memory read from /proc are what a minimal admission
// webhook costs. It prints where it serves and serves until its stdin closes (loadgen.StartFloor
// runs it that way; bench/suite builds it).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lanyard-dev/lanyard/bench/floor"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	if err := floor.ServeProcess(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "floorserver:", err)
		os.Exit(1)
	}
}
