// Bug 5 of the seed, "Locked OS thread holding a signal", as Go: the seed's
// program and the variants its diagnosis talks about. The scenario is the
// first argument:
//
//	as-written  the seed's program: lock the thread, block SIGURG on it
//	            (pthread_sigmask through cgo: the seed's
//	            syscall.SigsetAdd is illustrative), count to 10^9, print
//	            "done"
//	masked-gc   the same with two goroutines spawned before the loop: one
//	            prints "other ran" (what else wants to run), the other
//	            calls runtime.GC() (two stops of the world)
//	unmasked-gc the seed's fix: the mask is undone right after it is set
//
// GOMAXPROCS comes from the environment. After the loop, each masked
// scenario reads the thread's pending signals (/proc/thread-self/status,
// SigPnd) while SIGURG is still blocked, and prints the figures the
// catalogue reads as "measure KEY VALUE" lines: times in microseconds
// from the start of the loop.
package main

/*
#include <pthread.h>
#include <signal.h>

static int block_sigurg(void) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGURG);
	return pthread_sigmask(SIG_BLOCK, &s, 0);
}

static int unblock_sigurg(void) {
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGURG);
	return pthread_sigmask(SIG_UNBLOCK, &s, 0);
}
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pending says whether SIGURG is pending on this thread: the SigPnd mask
// of /proc/thread-self/status has bit SIGURG-1 set. -1 if it cannot be
// read.
func pending() int {
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigPnd:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return -1
			}
			return int(m >> (uint(syscall.SIGURG) - 1) & 1)
		}
	}
	return -1
}

func us(d time.Duration) int64 { return d.Microseconds() }

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written":
		runtime.LockOSThread()

		// mask SIGURG on this thread (bad idea!)
		C.block_sigurg()

		// tight loop
		for i := 0; i < 1_000_000_000; i++ {
		}
		fmt.Println("done")
		fmt.Println("measure sigurg_pending", pending())
		_ = time.Second
	case "masked-gc", "unmasked-gc":
		runtime.LockOSThread()
		C.block_sigurg()
		if scenario == "unmasked-gc" {
			C.unblock_sigurg() // the fix: undo the mask
		}
		other := make(chan time.Time, 1)
		go func() {
			t := time.Now()
			fmt.Println("other ran")
			other <- t
		}()
		collected := make(chan [2]time.Time, 1)
		go func() {
			t0 := time.Now()
			runtime.GC()
			collected <- [2]time.Time{t0, time.Now()}
		}()
		start := time.Now()
		for i := 0; i < 1_000_000_000; i++ {
		}
		end := time.Now()
		fmt.Println("done")
		if scenario != "unmasked-gc" {
			fmt.Println("measure sigurg_pending", pending())
		}
		t := <-other
		fmt.Println("measure loop_us", us(end.Sub(start)))
		fmt.Println("measure other_us", us(t.Sub(start)))
		g := <-collected
		fmt.Println("measure gc_start_us", us(g[0].Sub(start)))
		fmt.Println("measure gc_us", us(g[1].Sub(g[0])))
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
