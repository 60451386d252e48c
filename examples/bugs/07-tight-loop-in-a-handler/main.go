// Bug 7 of the seed, "Tight loop in a request handler", as Go. The seed's
// program serves /slow on :8080 and asks what latency other concurrent
// requests see. The scenario is the first argument:
//
//	as-written [serve]  the seed's handler; with "serve", the seed's main
//	                    exactly (http.ListenAndServe(":8080", nil), until
//	                    killed). Without it, no server: as preempt's
//	                    tight-loop-in-a-handler.pir, one goroutine runs the
//	                    /slow request (the seed's handler, called with a
//	                    recorder), and main, standing for 50 clients, sends
//	                    a request every millisecond to a fast handler's
//	                    goroutine and measures each from its arrival to its
//	                    answer; it prints their mean and worst, then the
//	                    slow handler its sum
//	latency             500 requests, one a millisecond, while /slow is
//	                    requested again as soon as it answers (preempt's
//	                    latency.pir); measures below
//	chunks-select       the same, the loop broken into chunks of 1,000,000
//	                    with select { case <-ctx.Done(): return; default: }
//	                    after each (the seed's fix; preempt's
//	                    chunks-select.pir); main cancels ctx after its
//	                    requests and waits for the handler to return
//	chunks-yield        chunks of 1,000,000 that yield: runtime.Gosched()
//	                    after each (preempt's chunks-yield.pir)
//
// GOMAXPROCS comes from the environment. The latency scenarios print a
// line and, from the sorted latencies:
//
//	measure requests N   500
//	measure mean_us N
//	measure p50_us N     the 250th of 500
//	measure p99_us N     the 495th
//	measure worst_us N   the 500th (p99.8: 500 requests have no p99.9)
//	measure held_us N    the median time the loop kept the P between two
//	                     answers, counting the gaps over 2 ms: its slice
//	measure slices N     how many such gaps
//	measure cancel_us N  (chunks-select) from the cancel to the handler's return
//
// and as-written, after its lines, the mean and worst of its 50 requests:
//
//	measure mean_us N
//	measure worst_us N
package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// slow is the seed's handler.
func slow(w http.ResponseWriter, r *http.Request) {
	var sum int64
	for i := int64(0); i < 1_000_000_000; i++ {
		sum += i
	}
	fmt.Fprintln(w, "sum:", sum)
}

// The seed's main.
func serve() {
	http.HandleFunc("/slow", slow)
	http.ListenAndServe(":8080", nil)
}

// fast answers each request at once (a handler's goroutine).
func fast(req <-chan int64, resp chan<- int64) {
	for t := range req {
		resp <- t
	}
}

// asWritten is the seed's program without the server: the /slow request
// on a goroutine of its own, 50 requests to a fast handler meanwhile.
func asWritten() {
	req := make(chan int64)
	resp := make(chan int64)
	done := make(chan bool)
	go fast(req, resp)
	go func() {
		w := httptest.NewRecorder()
		slow(w, httptest.NewRequest("GET", "/slow", nil))
		// "sum: N" from the handler, printed as the PIR program prints it.
		fmt.Println("slow: sum", strings.TrimSpace(strings.TrimPrefix(w.Body.String(), "sum:")))
		done <- true
	}()
	const k = 50
	var worst, total time.Duration
	due := time.Now()
	for i := 0; i < k; i++ {
		due = due.Add(time.Millisecond) // a request arrives every millisecond
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		req <- 0
		<-resp
		lat := time.Since(due) // from its arrival to its answer
		total += lat
		worst = max(worst, lat)
	}
	fmt.Printf("%d fast requests during the slow one: mean %d us, worst %d us\n", k, (total / k).Microseconds(), worst.Microseconds())
	<-done
	fmt.Printf("measure mean_us %d\n", (total / k).Microseconds())
	fmt.Printf("measure worst_us %d\n", worst.Microseconds())
}

var stop atomic.Bool
var sink atomic.Int64

// The /slow loop, requested again as soon as it answers.
func slowAgain() {
	for !stop.Load() {
		var sum int64
		for i := int64(0); i < 1_000_000_000; i++ {
			sum += i
		}
		sink.Store(sum)
	}
}

// The seed's fix: chunks, with a select on ctx.Done() after each.
func chunksSelect(ctx context.Context) {
	for {
		var sum int64
		for c := int64(0); c < 1000; c++ {
			for i := c * 1_000_000; i < (c+1)*1_000_000; i++ {
				sum += i
			}
			select {
			case <-ctx.Done():
				return
			default:
			}
		}
		sink.Store(sum)
	}
}

// Chunks that yield.
func chunksYield() {
	for !stop.Load() {
		var sum int64
		for c := int64(0); c < 1000; c++ {
			for i := c * 1_000_000; i < (c+1)*1_000_000; i++ {
				sum += i
			}
			runtime.Gosched()
		}
		sink.Store(sum)
	}
}

// latency sends 500 requests, one a millisecond, while run keeps a loop
// going, and prints the figures; with waitCancel, it cancels ctx and
// waits for run to return.
func latency(run func(ctx context.Context), waitCancel bool) {
	ctx, cancel := context.WithCancel(context.Background())
	req := make(chan int64)
	resp := make(chan int64)
	returned := make(chan bool)
	go fast(req, resp)
	go func() {
		run(ctx)
		returned <- true
	}()
	const k = 500
	lat := make([]time.Duration, 0, k)
	var gaps []time.Duration
	var total time.Duration
	due := time.Now()
	last := due
	for i := 0; i < k; i++ {
		due = due.Add(time.Millisecond)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		req <- 0
		<-resp
		t1 := time.Now()
		l := t1.Sub(due)
		lat = append(lat, l)
		total += l
		if gap := t1.Sub(last); gap > 2*time.Millisecond {
			gaps = append(gaps, gap)
		}
		last = t1
	}
	stop.Store(true)
	tc := time.Now()
	cancel()
	if waitCancel {
		<-returned
	}
	cancelled := time.Since(tc)
	slices.Sort(lat)
	slices.Sort(gaps)
	var held time.Duration
	if len(gaps) > 0 {
		held = gaps[len(gaps)/2]
	}
	us := func(d time.Duration) int64 { return d.Microseconds() }
	fmt.Printf("%d requests while /slow runs: mean %d us, p50 %d us, p99 %d us, worst %d us\n",
		k, us(total/k), us(lat[249]), us(lat[494]), us(lat[499]))
	fmt.Printf("measure requests %d\n", k)
	fmt.Printf("measure mean_us %d\n", us(total/k))
	fmt.Printf("measure p50_us %d\n", us(lat[249]))
	fmt.Printf("measure p99_us %d\n", us(lat[494]))
	fmt.Printf("measure worst_us %d\n", us(lat[499]))
	fmt.Printf("measure held_us %d\n", us(held))
	fmt.Printf("measure slices %d\n", len(gaps))
	if waitCancel {
		fmt.Printf("measure cancel_us %d\n", us(cancelled))
	}
}

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	switch scenario {
	case "as-written":
		if len(os.Args) > 2 && os.Args[2] == "serve" {
			serve()
			return
		}
		asWritten()
	case "latency":
		latency(func(context.Context) { slowAgain() }, false)
	case "chunks-select":
		latency(chunksSelect, true)
	case "chunks-yield":
		latency(func(context.Context) { chunksYield() }, false)
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
}
