// Bug 2 of the seed, "GC stalled by a counter loop", as Go: the seed's
// program, with the runtime's own figures for its collections. The
// scenario is the first argument:
//
//	as-written  the seed's program exactly (GOMAXPROCS 2, GOGC 1, a
//	            goroutine doing x++ forever, main allocating 100 1 MiB
//	            slices with a 1 ms sleep after each)
//
// After main's loop it prints "done" and the figures the catalogue reads
// (runtime/metrics), as "measure KEY VALUE" lines:
//
//	gc_cycles         collections completed
//	stw_start_p50_us  the median and the longest time a stop of the
//	stw_start_max_us  world for the collector took to stop every goroutine
//	                  (/sched/pauses/stopping/gc:seconds; each the upper
//	                  bound of its histogram bucket), in microseconds
//	stw_start_over_1ms how many of those stops took 1 ms or more
//	stw_starts        how many there were
//
// The seed's program prints nothing; "done" and the figures come after
// its loop. The counter's machine code is main.asWritten.func1.
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

func asWritten() {
	runtime.GOMAXPROCS(2)
	debug.SetGCPercent(1)

	var x uint64
	go func() {
		for {
			x++ // looks innocent
		}
	}()

	for i := 0; i < 100; i++ {
		_ = make([]byte, 1<<20)
		time.Sleep(time.Millisecond)
	}
	fmt.Println("done")
	report()
}

// report prints the runtime's figures for the collections so far.
func report() {
	s := []metrics.Sample{
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/stopping/gc:seconds"},
	}
	metrics.Read(s)
	fmt.Println("measure gc_cycles", s[0].Value.Uint64())
	h := s[1].Value.Float64Histogram()
	fmt.Println("measure stw_starts", total(h))
	if total(h) > 0 {
		fmt.Println("measure stw_start_p50_us", us(quantile(h, 0.5)))
		fmt.Println("measure stw_start_max_us", us(quantile(h, 1)))
		fmt.Println("measure stw_start_over_1ms", over(h, 1e-3))
	}
}

func total(h *metrics.Float64Histogram) uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// quantile is the upper bound of the bucket holding the q-th quantile (the
// lower bound when the upper one is infinite).
func quantile(h *metrics.Float64Histogram, q float64) float64 {
	want := max(uint64(math.Ceil(q*float64(total(h)))), 1)
	var n uint64
	for i, c := range h.Counts {
		n += c
		if n >= want {
			if math.IsInf(h.Buckets[i+1], 1) {
				return h.Buckets[i]
			}
			return h.Buckets[i+1]
		}
	}
	return h.Buckets[len(h.Buckets)-1]
}

// over counts the values in buckets that start at or above min seconds.
func over(h *metrics.Float64Histogram, min float64) uint64 {
	var n uint64
	for i, c := range h.Counts {
		if h.Buckets[i] >= min {
			n += c
		}
	}
	return n
}

func us(sec float64) string { return fmt.Sprintf("%.1f", sec*1e6) }

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written":
		asWritten()
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
