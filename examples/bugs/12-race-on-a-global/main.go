// Bug 12 of the seed, "Race between preemption and a global", as Go: the
// seed's program and the variants its diagnosis talks about. The scenario
// is the first argument:
//
//	as-written  the seed's program: GOMAXPROCS(4), 10 goroutines each
//	            incrementing a plain global 1,000,000 times
//	one-p       the same at GOMAXPROCS(1)
//	long-one-p  GOMAXPROCS(1), 30,000,000 increments per goroutine: each
//	            goroutine runs for longer than a time slice, so
//	            asynchronous preemption stops it in the middle of its loop
//	atomic      the seed's fix: atomic.Int64.Add (GOMAXPROCS(4))
//	mutex       the seed's fix: a sync.Mutex around counter++
//	channel     the seed's fix: a channel of capacity 1 held around
//	            counter++
//
// Each prints what the seed's program prints ("counter: N"), then
//
//	measure lost N     increments lost (10 goroutines x the loop's count,
//	                   less the final counter)
//	measure overlap N  the most goroutines that were at once between the
//	                   start and the end of their loop: 1 means each ran
//	                   its loop alone, start to finish
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
)

var counter int

// worker is the seed's goroutine body, kept out of line so that its
// machine code can be read on its own (go tool objdump -s 'main\.worker$').
//
//go:noinline
func worker(wg *sync.WaitGroup, n int) {
	defer wg.Done()
	running.Add(1)
	for j := 0; j < n; j++ {
		counter++
	}
	seen(running.Add(-1) + 1)
}

var atomicCounter atomic.Int64

//go:noinline
func atomicWorker(wg *sync.WaitGroup, n int) {
	defer wg.Done()
	running.Add(1)
	for j := 0; j < n; j++ {
		atomicCounter.Add(1)
	}
	seen(running.Add(-1) + 1)
}

var mu sync.Mutex

//go:noinline
func mutexWorker(wg *sync.WaitGroup, n int) {
	defer wg.Done()
	running.Add(1)
	for j := 0; j < n; j++ {
		mu.Lock()
		counter++
		mu.Unlock()
	}
	seen(running.Add(-1) + 1)
}

var lock = make(chan struct{}, 1)

//go:noinline
func channelWorker(wg *sync.WaitGroup, n int) {
	defer wg.Done()
	running.Add(1)
	for j := 0; j < n; j++ {
		lock <- struct{}{}
		counter++
		<-lock
	}
	seen(running.Add(-1) + 1)
}

// How many goroutines are inside their loop, and the most there were.
// The counts are atomic instructions right before and right after the
// loop, with no call between them and the loop (a call could be a
// preemption point): a goroutine is counted from its first increment to
// its last, and one that sees others counted at its end was interleaved
// with them.
var running, overlap atomic.Int64

// seen records r goroutines counted at once.
func seen(r int64) {
	for {
		m := overlap.Load()
		if r <= m || overlap.CompareAndSwap(m, r) {
			return
		}
	}
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	procs, n, work := 4, 1_000_000, worker
	switch scenario {
	case "as-written":
	case "one-p":
		procs = 1
	case "long-one-p":
		procs, n = 1, 30_000_000
	case "atomic":
		work = atomicWorker
	case "mutex":
		work = mutexWorker
	case "channel":
		work = channelWorker
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(procs)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go work(&wg, n)
	}
	wg.Wait()
	if scenario == "atomic" {
		counter = int(atomicCounter.Load())
	}
	fmt.Println("counter:", counter)
	fmt.Println("measure lost", 10*n-counter)
	fmt.Println("measure overlap", overlap.Load())
}
