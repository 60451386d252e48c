// Bug 16 of the seed, "select with only a default is not a yield", as Go.
// The seed gives a loop:
//
//	for {
//	    select {
//	    default:
//	    }
//	    work()
//	}
//
// completed as select-only-default.pir is: at GOMAXPROCS(1) the loop runs
// behind main, which sleeps 1 ms and says how late it woke. The scenario is
// the first argument:
//
//	as-written   as the .pir: the loop with work() a real call, then
//	             again with work() inlined
//	call         the loop with work() a real call (a small leaf function,
//	             kept out of line)
//	inline       the loop with work() inlined
//	nonleaf      the loop with work() a call that itself calls a function
//	gosched      the seed's fix: work() inlined and runtime.Gosched()
//	             instead of the select
//	channel-arm  the seed's other fix: the select gets a real channel
//	             arm (a channel nobody sends on)
//
// The variants print "main woke" and `measure late_us N`, how late main's
// 1 ms sleep ended, in microseconds.
package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// work is a small leaf function (no calls, no frame to speak of): whether
// the compiler gives it a stack check is what the work_code scenario reads.
//
//go:noinline
func work(n int) int { return n + 1 }

// workInline is small enough for the inliner: the loop gets its body.
func workInline(n int) int { return n + 1 }

// workNonleaf calls a function: it is not a leaf.
//
//go:noinline
func workNonleaf(n int) int { return work(n) }

// The spinners, each kept out of line so that its machine code can be read
// on its own (go tool objdump -s 'main\.spinCall$').

//go:noinline
func spinCall() {
	n := 0
	for {
		select {
		default:
		}
		n = work(n)
	}
}

//go:noinline
func spinInline() {
	n := 0
	for {
		select {
		default:
		}
		n = workInline(n)
	}
}

//go:noinline
func spinNonleaf() {
	n := 0
	for {
		select {
		default:
		}
		n = workNonleaf(n)
	}
}

//go:noinline
func spinGosched() {
	n := 0
	for {
		runtime.Gosched()
		n = workInline(n)
	}
}

var never = make(chan int)

//go:noinline
func spinChannelArm() {
	n := 0
	for {
		select {
		case <-never:
		default:
		}
		n = workInline(n)
	}
}

// lateAfterSleep sleeps 1 ms behind a spinner and returns how late it woke.
func lateAfterSleep() int64 {
	t0 := time.Now()
	time.Sleep(time.Millisecond)
	return time.Since(t0).Microseconds() - 1000
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	runtime.GOMAXPROCS(1)
	var spin func()
	switch scenario {
	case "as-written":
		go spinCall()
		late := lateAfterSleep()
		fmt.Printf("work() as a call: main's 1000 us sleep ended %d us late\n", late)
		go spinInline()
		time.Sleep(time.Millisecond)
		fmt.Println("work() inlined: main woke")
		return
	case "call":
		spin = spinCall
	case "inline":
		spin = spinInline
	case "nonleaf":
		spin = spinNonleaf
	case "gosched":
		spin = spinGosched
	case "channel-arm":
		spin = spinChannelArm
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	go spin()
	late := lateAfterSleep()
	fmt.Println("main woke")
	fmt.Println("measure late_us", late)
}
