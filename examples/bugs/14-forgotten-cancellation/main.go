// Bug 14 of the seed, "Forgotten cancellation in a long-running
// goroutine", as Go: the seed's program and its fix. The scenario is the
// first argument:
//
//	as-written  the seed's program: a 100 ms context, a worker summing
//	            1,000,000,000 numbers without looking at it, main waiting
//	            for ctx.Done() and then sleeping 1 s
//	waiting     the same, but main, instead of its last sleep (only there
//	            to let the worker print), waits until the worker is done:
//	            the same lines, whether the loop takes more or less than
//	            1 s
//	fixed       the seed's fix: the worker polls ctx.Done() with a select
//	            (and a default) every 1024 iterations, and returns; main
//	            waits for it as in waiting
//
// GOMAXPROCS and GODEBUG come from the environment. Each prints what the
// seed's program prints, and the times, in microseconds since main
// started, of
//
//	measure ctx_us X   main's "ctx done" line
//	measure sum_us X   the worker's "sum:" line (the end of its loop)
//	measure stop_us X  (fixed) the worker's return on cancellation
package main

import (
	"context"
	"fmt"
	"os"
	"time"
)

var start = time.Now()

func us() int64 { return time.Since(start).Microseconds() }

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written", "waiting", "fixed":
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	_ = cancel
	done := make(chan bool, 1) // the worker is done (waiting, fixed)

	if scenario != "fixed" {
		go func() {
			sum := 0
			for i := 0; i < 1_000_000_000; i++ {
				sum += i
			}
			fmt.Println("sum:", sum)
			fmt.Println("measure sum_us", us())
			done <- true
		}()
	} else {
		go func() {
			sum := 0
			for i := 0; i < 1_000_000_000; i++ {
				if i%1024 == 0 {
					select {
					case <-ctx.Done():
						fmt.Println("measure stop_us", us())
						done <- true
						return
					default:
					}
				}
				sum += i
			}
			fmt.Println("sum:", sum)
			fmt.Println("measure sum_us", us())
			done <- true
		}()
	}

	<-ctx.Done()
	fmt.Println("ctx done:", ctx.Err())
	fmt.Println("measure ctx_us", us())
	if scenario == "as-written" {
		time.Sleep(time.Second)
		return
	}
	<-done
}
