// Bug 8 of the seed, "Misbelief about runtime.Gosched ordering", as Go:
// the seed's program, its fix as written, and a fix that fixes the whole
// order. The scenario is the first argument:
//
//	as-written  the seed's program exactly: two goroutines print their
//	            "1" line, call runtime.Gosched, print their "2" line
//	seed-fix    the seed's fix as written: ch := make(chan struct{}, 1),
//	            "A side: ch <- struct{}{}", "B side: <-ch"; the seed does
//	            not say where, so A sends right after printing A1 and B
//	            receives right before printing B1 (A1 before B1 is what
//	            one send and one receive can order)
//	ping-pong   a fix for the whole order A1 B1 A2 B2: two unbuffered
//	            channels hand the turn from one goroutine to the other
//
// GOMAXPROCS comes from the environment, as in the seed (which does not
// set it). Each prints the four lines; nothing else.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
)

func asWritten() {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		fmt.Println("A1")
		runtime.Gosched()
		fmt.Println("A2")
	}()
	go func() {
		defer wg.Done()
		fmt.Println("B1")
		runtime.Gosched()
		fmt.Println("B2")
	}()
	wg.Wait()
}

func seedFix() {
	var wg sync.WaitGroup
	wg.Add(2)
	ch := make(chan struct{}, 1)
	go func() {
		defer wg.Done()
		fmt.Println("A1")
		ch <- struct{}{} // A side: ch <- struct{}{}
		runtime.Gosched()
		fmt.Println("A2")
	}()
	go func() {
		defer wg.Done()
		<-ch // B side: <-ch
		fmt.Println("B1")
		runtime.Gosched()
		fmt.Println("B2")
	}()
	wg.Wait()
}

func pingPong() {
	var wg sync.WaitGroup
	wg.Add(2)
	toB := make(chan struct{})
	toA := make(chan struct{})
	go func() {
		defer wg.Done()
		fmt.Println("A1")
		toB <- struct{}{}
		<-toA
		fmt.Println("A2")
		toB <- struct{}{}
	}()
	go func() {
		defer wg.Done()
		<-toB
		fmt.Println("B1")
		toA <- struct{}{}
		<-toB
		fmt.Println("B2")
	}()
	wg.Wait()
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written":
		asWritten()
	case "seed-fix":
		seedFix()
	case "ping-pong":
		pingPong()
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
