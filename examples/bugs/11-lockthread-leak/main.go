// Bug 11 of the seed, "runtime.LockOSThread and goroutine leak", as Go.
// The scenario is the first argument:
//
//	as-written [D]  the seed's program: 1000 workers that lock their
//	                thread and sleep 10 ms, main asleep for D (the seed's
//	                2s unless given)
//	waiting         the same, main waiting for the 1000 workers instead of
//	                sleeping (preempt's lockthread-leak.pir)
//	two-waves       1000 workers, waited for, then 1000 more (preempt's
//	                two-waves.pir): are the first wave's threads reused?
//	no-lock         the seed's fix: the workers do not lock a thread
//	                (preempt's no-lock.pir)
//
// Each worker also counts, with atomics, how many workers hold a locked
// thread at once (as the PIR programs do). At the end each prints, from
// /proc/self/status and those counters:
//
//	measure peak_locked N    the most workers locked at once
//	measure threads N        Threads at the end (Go keeps idle Ms, so this
//	                         is every thread the run created)
//	measure threads_wave1 N  (two-waves) Threads after the first wave
//	measure rss_kb N         VmRSS at the end
//	measure hwm_kb N         VmHWM: the peak RSS
//	measure start_kb N       VmRSS before the first worker
//	measure per_thread_kb X  (VmHWM - that start) / (threads created)
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var alive, peak atomic.Int64 // workers holding a locked thread now; the most at once

func locked() {
	n := alive.Add(1)
	for {
		p := peak.Load()
		if n <= p || peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// worker is the seed's.
func worker() {
	runtime.LockOSThread()
	locked()
	defer runtime.UnlockOSThread()
	// do work that needs thread-local state
	time.Sleep(10 * time.Millisecond)
	alive.Add(-1)
}

// The seed's fix: no lock.
func plainWorker() {
	time.Sleep(10 * time.Millisecond)
}

// status reads fields of /proc/self/status (kB for the Vm lines).
func status(keys ...string) []int64 {
	vals := make([]int64, len(keys))
	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		for i, key := range keys {
			if k == key {
				vals[i], _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
	}
	return vals
}

func wave(w func()) {
	var wg sync.WaitGroup
	wg.Add(1000)
	for i := 0; i < 1000; i++ {
		go func() {
			defer wg.Done()
			w()
		}()
	}
	wg.Wait()
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	start := status("Threads", "VmRSS")
	switch scenario {
	case "as-written":
		sleep := 2 * time.Second
		if len(os.Args) > 2 {
			d, err := time.ParseDuration(os.Args[2])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			sleep = d
		}
		for i := 0; i < 1000; i++ {
			go worker()
		}
		time.Sleep(sleep)
	case "waiting":
		wave(worker)
	case "two-waves":
		wave(worker)
		fmt.Printf("measure threads_wave1 %d\n", status("Threads")[0])
		wave(worker)
	case "no-lock":
		wave(plainWorker)
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	end := status("Threads", "VmRSS", "VmHWM")
	fmt.Printf("measure peak_locked %d\n", peak.Load())
	fmt.Printf("measure threads %d\n", end[0])
	fmt.Printf("measure rss_kb %d\n", end[1])
	fmt.Printf("measure hwm_kb %d\n", end[2])
	fmt.Printf("measure start_kb %d\n", start[1])
	if created := end[0] - start[0]; created > 0 {
		fmt.Printf("measure per_thread_kb %.1f\n", float64(end[2]-start[1])/float64(created))
	}
}
