// Bug 10 of the seed, "Forgetting that select { default } is not a true
// loop yield", as Go. The seed gives the worker's loop only; here it is
// completed as preempt's select-default-not-a-yield.pir completes it: the
// worker runs the seed's loop, ctx is a context.Context that main cancels,
// and main, on the only P, sleeps behind the worker, then cancels it and
// says how late its sleep ended. Two phases, the same worker code:
//
//	phase 1: the seed's inner loop of 1000 iterations, main sleeps 15 ms;
//	phase 2: an inner loop of 300,000,000 iterations, main sleeps 1 ms:
//	         what the select does not protect.
//
// The scenario is the first argument; there is one, the default:
//
//	phases  both phases
//
// It prints a line per phase, as the PIR program does, and
//
//	measure phaseK_late_us N   how late main's sleep of phase K ended (µs)
//
// Run it with GODEBUG=asyncpreemptoff=1 for cooperative preemption only.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"time"
)

// worker is the seed's loop. Kept out of line so that its machine code can
// be read on its own (go tool objdump -s 'main\.worker$').
//
//go:noinline
func worker(ctx context.Context, n int, result chan<- int64) {
	var sum int64
	for {
		select {
		case <-ctx.Done():
			result <- sum
			return
		default:
		}
		// tight inner work
		for j := 0; j < n; j++ {
			sum += int64(j)
		}
	}
}

// phase runs the worker with an inner loop of n iterations while main
// sleeps sleepUS behind it, then cancels it.
func phase(k, n int, sleepUS int64) {
	ctx, cancel := context.WithCancel(context.Background())
	result := make(chan int64)
	go worker(ctx, n, result)
	t0 := time.Now()
	time.Sleep(time.Duration(sleepUS) * time.Microsecond)
	slept := time.Since(t0)
	cancel()
	<-result
	late := slept.Microseconds() - sleepUS
	fmt.Printf("phase %d: inner loop of %d: main's %d us sleep ended %d us late; worker cancelled\n", k, n, sleepUS, late)
	fmt.Printf("measure phase%d_late_us %d\n", k, late)
}

func main() {
	scenario := "phases"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	if scenario != "phases" {
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1) // the PIR program's `set procs = 1`
	phase(1, 1000, 15000)
	phase(2, 300_000_000, 1000)
}
