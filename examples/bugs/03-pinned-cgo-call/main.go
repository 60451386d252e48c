// Bug 3 of the seed, "Pinned cgo call starving Go goroutines", as Go. The
// seed's C.sleep(3) is scaled to 200 ms (usleep), as in the PIR programs.
// The scenario is the first argument:
//
//	as-written  the seed's program
//	rounds [P]  the three rounds of cgo-rounds.pir, one after the other,
//	            at P Ps (default 1, as the seed):
//	              round 1: the seed's program as written;
//	              round 2: goroutine 1 is already in C when goroutine 2
//	                       is created (main calls runtime.Gosched between
//	                       the two), after round 1's 200 ms idle spell;
//	              round 3: the same after main has kept its P busy for
//	                       50 ms
//
// Each round prints the seed's line and, as "measure KEY VALUE" lines,
// when goroutine 2 ran in microseconds from start (roundN_us, the seed's
// time.Since(start)) and whether it ran before goroutine 1 had entered C
// (roundN_g2_first, 1 or 0).
package main

/*
#include <unistd.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The seed's C.sleep(3), scaled.
const cSleep = 200 * time.Millisecond

func cgoSleep() { C.usleep(C.useconds_t(cSleep / time.Microsecond)) }

func asWritten() {
	runtime.GOMAXPROCS(1)
	var wg sync.WaitGroup

	wg.Add(1)
	go func() {
		defer wg.Done()
		cgoSleep() // C.sleep(3): 3 seconds in C, here 200 ms
	}()

	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		fmt.Println("hi from goroutine 2 at", time.Since(start))
	}()

	wg.Wait()
}

// Set by goroutine 1 just before it enters C; cleared before each round.
var inC atomic.Bool

func hi(round int, start time.Time) {
	d := time.Since(start)
	first := 0
	if !inC.Load() {
		first = 1
	}
	fmt.Printf("round %d: hi from goroutine 2 at %d us\n", round, d.Microseconds())
	fmt.Printf("measure round%d_us %d\n", round, d.Microseconds())
	fmt.Printf("measure round%d_g2_first %d\n", round, first)
}

// round1 is the seed's main.
func round1() {
	inC.Store(false)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		inC.Store(true)
		cgoSleep()
	}()
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		hi(1, start)
	}()
	wg.Wait()
}

// round2: goroutine 1 is in C before goroutine 2 exists.
func round2(round int) {
	inC.Store(false)
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		inC.Store(true)
		cgoSleep()
	}()
	runtime.Gosched() // goroutine 1 runs and enters C
	wg.Add(1)
	go func() {
		defer wg.Done()
		hi(round, start)
	}()
	wg.Wait()
}

// busy keeps the P busy for 50 ms.
func busy() {
	t0 := time.Now()
	for time.Since(t0) < 50*time.Millisecond {
	}
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written":
		asWritten()
	case "rounds":
		procs := 1
		if len(os.Args) > 2 {
			procs, _ = strconv.Atoi(os.Args[2])
		}
		runtime.GOMAXPROCS(procs)
		round1()
		round2(2)
		busy()
		round2(3)
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
