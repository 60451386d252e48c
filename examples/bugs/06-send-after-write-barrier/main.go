// Bug 6 of the seed, "Channel send inside a write barrier", as Go: the
// seed's Holder.Update in a program that uses it while the collector runs
// (the same program as send-after-write-barrier.pir), and two functions
// whose machine code the catalogue compares with Update's. The scenario is
// the first argument:
//
//	as-written  20000 updates, h.ptr = p then h.ch <- 42, with a
//	            receiver summing what it gets and runtime.GC() every
//	            1000 updates; prints "sum S last L", and the number of
//	            collections as "measure gc_cycles N"
//
// The functions read with go tool objdump:
//
//	(*Holder).Update  the seed's: one pointer store, then a send
//	(*Holder).Set     the pointer store alone
//	(*Pair).Both      two pointer stores, one statement each, in a row
package main

import (
	"fmt"
	"os"
	"runtime"
)

type Holder struct {
	ptr *int
	ch  chan int
}

//go:noinline
func (h *Holder) Update(p *int) {
	h.ptr = p  // pointer write -> write barrier
	h.ch <- 42 // channel send
}

//go:noinline
func (h *Holder) Set(p *int) {
	h.ptr = p // pointer write -> write barrier
}

type Pair struct {
	a, b *int
}

//go:noinline
func (q *Pair) Both(x, y *int) {
	q.a = x
	q.b = y
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	if scenario != "as-written" {
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	runtime.GOMAXPROCS(2)
	const n = 20000
	h := &Holder{ch: make(chan int, 16)}
	done := make(chan int)
	go func() {
		sum := 0
		for i := 0; i < n; i++ {
			sum += <-h.ch
		}
		done <- sum
	}()
	for i := 0; i < n; i++ {
		p := new(int)
		*p = i
		h.Update(p)
		if i%1000 == 0 {
			runtime.GC() // collections while the barrier is in use
		}
	}
	sum := <-done
	fmt.Println("sum", sum, "last", *h.ptr)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Println("measure gc_cycles", ms.NumGC)

	// Keep the functions whose code is read.
	var x, y int
	h.Set(&x)
	var q Pair
	q.Both(&x, &y)
}
