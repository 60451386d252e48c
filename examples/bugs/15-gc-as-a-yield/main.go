// Bug 15 of the seed, "Misusing runtime.GC() to force fairness", as Go.
// The seed gives a fragment:
//
//	go func() {
//	    for {
//	        doWork()
//	        runtime.GC() // "to give others a chance"
//	    }
//	}()
//
// completed as gc-as-a-yield.pir is: doWork() is a call-free loop of
// 100,000 iterations, the live heap is a list of 20,000 small objects, and
// at GOMAXPROCS(1) one goroutine does 200 rounds of doWork() followed by
// runtime.Gosched(), then another does 200 rounds followed by
// runtime.GC(). The scenario is the first argument:
//
//	as-written  the above; prints the time of each worker's 200 rounds
//	big-heap    the same with a live heap of 1,000,000 objects and 20
//	            rounds of each
//	no-yield    the seed's fix, "do not yield at all": a goroutine loops
//	            on doWork() with no yield while main, on the same P,
//	            sleeps 1 ms; prints how late main woke
//
// Figures:
//
//	measure gosched_ns N  mean time of one runtime.Gosched() call
//	measure gc_ns N       mean time of one runtime.GC() call
//	measure gc_cycles N   collections completed during the GC rounds
//	measure gc_stw N      the collector's stops of the world during them
//	measure gc_allocs N   heap allocations during them
//	measure gosched_allocs N  heap allocations during the Gosched rounds
//	measure late_us N     (no-yield) how late main's 1 ms sleep ended
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"time"
)

var iters = 100_000

// doWork is a call-free loop, kept out of line as the seed's call is.
//
//go:noinline
func doWork() uint64 {
	x := uint64(1)
	for i := 0; i < iters; i++ {
		x = x*6364136223846793005 + 1
	}
	return x
}

var sink uint64

type node struct {
	val  int
	next *node
}

var live *node

// build makes the live heap: a list of n small objects.
func build(n int) {
	var head *node
	for i := 0; i < n; i++ {
		head = &node{val: i, next: head}
	}
	live = head
}

// worker does rounds of doWork() and a yield, timing the yields; it sends
// the whole time (us) and the mean time of one yield (ns).
func worker(rounds int, withGC bool, done chan [2]int64) {
	var calls time.Duration
	t0 := time.Now()
	for i := 0; i < rounds; i++ {
		sink += doWork()
		c0 := time.Now()
		if withGC {
			runtime.GC() // "to give others a chance"
		} else {
			runtime.Gosched()
		}
		calls += time.Since(c0)
	}
	total := time.Since(t0)
	done <- [2]int64{total.Microseconds(), calls.Nanoseconds() / int64(rounds)}
}

// gcStats reads the collections completed, the GC's stops of the world,
// and the heap allocations so far.
func gcStats() (cycles, stw, allocs uint64) {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/total/gc:seconds"},
		{Name: "/gc/heap/allocs:objects"},
	}
	metrics.Read(s)
	for _, n := range s[1].Value.Float64Histogram().Counts {
		stw += n
	}
	return s[0].Value.Uint64(), stw, s[2].Value.Uint64()
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	runtime.GOMAXPROCS(1)
	rounds, objects := 200, 20_000
	switch scenario {
	case "as-written":
	case "big-heap":
		rounds, objects = 20, 1_000_000
	case "no-yield":
		go func() {
			for {
				sink += doWork()
			}
		}()
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		late := time.Since(t0).Microseconds() - 1000
		fmt.Printf("main's 1000 us sleep ended %d us late\n", late)
		fmt.Println("measure late_us", late)
		return
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	build(objects)
	done := make(chan [2]int64)
	_, _, g0 := gcStats()
	go worker(rounds, false, done)
	a := <-done
	c0, s0, m0 := gcStats()
	go worker(rounds, true, done)
	b := <-done
	c1, s1, m1 := gcStats()
	fmt.Printf("%d rounds of work with runtime.Gosched: %d us; with runtime.GC: %d us\n", rounds, a[0], b[0])
	fmt.Println("measure gosched_ns", a[1])
	fmt.Println("measure gc_ns", b[1])
	fmt.Println("measure gc_cycles", c1-c0)
	fmt.Println("measure gc_stw", s1-s0)
	fmt.Println("measure gc_allocs", m1-m0)
	fmt.Println("measure gosched_allocs", m0-g0)
	runtime.KeepAlive(live)
}
