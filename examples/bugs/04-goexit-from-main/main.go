// Bug 4 of the seed, "runtime.Goexit from main", as Go: the seed's program
// and the variants its diagnosis talks about. The scenario is the first
// argument:
//
//	as-written  the seed's program exactly
//	deferred    the same with a deferred call, which also asks recover()
//	            whether Goexit is a panic it could stop
//	worker      main calls Goexit while a worker goroutine still sleeps
//	            for 50 ms and then prints "worker done"
//	exit        the seed's fix: os.Exit(0) instead of Goexit
//	return      the seed's other fix: return from main
//
// Each prints what the seed's program prints, and what the variant adds.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written":
		fmt.Println("about to Goexit")
		runtime.Goexit()
		fmt.Println("after Goexit")
	case "deferred":
		defer func() {
			fmt.Println("deferred call ran, recover() =", recover())
		}()
		fmt.Println("about to Goexit")
		runtime.Goexit()
		fmt.Println("after Goexit")
	case "worker":
		go func() {
			time.Sleep(50 * time.Millisecond)
			fmt.Println("worker done")
		}()
		fmt.Println("about to Goexit")
		runtime.Goexit()
		fmt.Println("after Goexit")
	case "exit":
		fmt.Println("about to Goexit")
		os.Exit(0)
		fmt.Println("after Goexit")
	case "return":
		fmt.Println("about to Goexit")
		if len(os.Args) > 0 {
			return
		}
		fmt.Println("after Goexit")
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
