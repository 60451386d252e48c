// Bug 1 of the seed, "The classic hang", as Go: the seed's program and the
// variants its diagnosis talks about. The scenario is the first argument:
//
//	as-written    the seed's program exactly
//	waiting-main  the program the diagnosis describes: main lets the
//	              spinner take the P first (a 1 ms sleep), then sets the
//	              flag and waits for "done!"
//	atomic        the seed's fix: the flag is an atomic.Bool
//
// Each prints what the seed's program prints; nothing else.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// spin is the spinner's loop, kept out of line so that its machine code
// can be read on its own (go tool objdump -s 'main\.spin$').
//
//go:noinline
func spin(done *bool) {
	for !*done {
	}
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	runtime.GOMAXPROCS(1)
	switch scenario {
	case "as-written":
		done := false
		go func() {
			// intentional: wait for the flag
			for !done {
			}
			fmt.Println("done!")
		}()
		done = true
		fmt.Println("flag set")
	case "waiting-main":
		done := false
		finished := make(chan bool)
		go func() {
			spin(&done)
			fmt.Println("done!")
			finished <- true
		}()
		time.Sleep(time.Millisecond)
		done = true
		fmt.Println("flag set")
		<-finished
	case "atomic":
		var done atomic.Bool
		finished := make(chan bool)
		go func() {
			for !done.Load() {
			}
			fmt.Println("done!")
			finished <- true
		}()
		time.Sleep(time.Millisecond)
		done.Store(true)
		fmt.Println("flag set")
		<-finished
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
