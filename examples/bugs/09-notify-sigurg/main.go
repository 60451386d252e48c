// Bug 9 of the seed, "Signal handler installed on SIGURG", as Go. The
// scenario is the first argument, the sleep the second (a duration such
// as 100ms; the seed sleeps 5 s):
//
//	as-written   the seed's program exactly: a channel of one notified of
//	             SIGURG, a goroutine printing "got SIGURG!" for each value,
//	             main asleep; nothing else runs, so nothing is preempted
//	busy         the same with a call-free spinner beside it, something
//	             for sysmon to preempt (preempt's notify-sigurg.pir)
//	preemptions  busy with two spinners, which at one P can only take the
//	             P from each other by being preempted: each counts the
//	             times it finds that the other ran since its last
//	             iteration (a preemption of one of them); a second channel,
//	             of 4096, notified of SIGURG too and drained by a counter,
//	             counts the arrivals the seed's channel of one was offered
//	             (preempt's count-preemptions.pir)
//
// Each prints what the seed's program prints and, after the sleep (and,
// for preemptions, once the spinners are stopped and both channels
// drained):
//
//	measure received N   values the seed's channel delivered to the printer
//	measure per_s X      the same per second of sleep
//	measure arrived N    (preemptions) values the big channel delivered
//	measure switches N   (preemptions) times a spinner was preempted for the other
package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

var running atomic.Int64 // which spinner ran last (preemptions)
var stop atomic.Bool     // the spinners' end (preemptions)

// spin is a call-free loop: only an asynchronous preemption (a SIGURG
// from sysmon) stops it. It counts how often it finds that the other
// spinner ran since its own last iteration, until stopped.
//
//go:noinline
func spin(me int64, switches *atomic.Int64) {
	for !stop.Load() {
		if running.Load() != me {
			running.Store(me)
			switches.Add(1)
		}
	}
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	sleep := 5 * time.Second
	if len(os.Args) > 2 {
		d, err := time.ParseDuration(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		sleep = d
	}
	var received, arrived, switches atomic.Int64
	var all chan os.Signal

	switch scenario {
	case "as-written", "busy", "preemptions":
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}

	// The seed's program.
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGURG)

	go func() {
		for range c {
			fmt.Println("got SIGURG!")
			received.Add(1)
		}
	}()

	switch scenario {
	case "busy":
		var ignored atomic.Int64
		go spin(1, &ignored)
	case "preemptions":
		all = make(chan os.Signal, 4096)
		signal.Notify(all, syscall.SIGURG)
		go func() {
			for range all {
				arrived.Add(1)
			}
		}()
		go spin(1, &switches)
		go spin(2, &switches)
	}

	t0 := time.Now()
	time.Sleep(sleep)
	slept := time.Since(t0)
	if all != nil {
		// Stop the spinners, so that no more signals come, and let the
		// printer and the counter take what is queued: both counts then
		// cover the same signals.
		stop.Store(true)
		for i := 0; i < 100 && (i < 5 || len(c) > 0 || len(all) > 0); i++ {
			time.Sleep(time.Millisecond)
		}
	}

	n := received.Load()
	fmt.Printf("measure received %d\n", n)
	fmt.Printf("measure per_s %.1f\n", float64(n)/slept.Seconds())
	if scenario == "preemptions" {
		fmt.Printf("measure arrived %d\n", arrived.Load())
		// The first spinner to run counts its start as a switch.
		fmt.Printf("measure switches %d\n", switches.Load()-1)
	}
}
