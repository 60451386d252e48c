// Command peers runs Go's side of `preempt bench runtime`: the same
// runtime benchmarks as bench/src/runtime/*.pir, written in Go, each
// printing one JSON object on one line of stdout.
//
//	peers spawn    -n N   goroutines spawned and run to completion
//	peers switch   -n N   two goroutines alternating with runtime.Gosched
//	peers pingpong -n N   round trips over two unbuffered channels
//	peers idle     -n N   N goroutines blocked in a channel receive: RSS
//	peers sleeper  -n N   time.Sleep(1ms) behind a spinning goroutine
//	               -nocall   ... whose loop makes no call (only
//	                         asynchronous preemption can stop it)
//	peers stw      -n N -spinners K
//	                      N runtime.GC() calls while K call-free loops
//	                      spin: the stop-the-world stopping time
//	                      (runtime/metrics /sched/pauses/stopping/gc)
//
// GOMAXPROCS and GODEBUG come from the environment, as the harness sets
// them. Each program times only its measured loop (time.Now around it),
// as the PIR programs do with `now`, so start-up is not counted.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// result is one benchmark's figures; fields that do not apply are left out.
type result struct {
	Bench      string  `json:"bench"`
	Go         string  `json:"go"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	GODEBUG    string  `json:"godebug"`
	N          int     `json:"n"`
	ElapsedNs  int64   `json:"elapsed_ns,omitempty"`
	Ops        int64   `json:"ops,omitempty"`
	NsPerOp    float64 `json:"ns_per_op,omitempty"`
	RSSBeforeK int64   `json:"rss_before_kib,omitempty"`
	RSSAfterK  int64   `json:"rss_after_kib,omitempty"`
	BytesPerG  float64 `json:"bytes_per_goroutine,omitempty"`
	SleepNs    int64   `json:"sleep_ns,omitempty"`
	LateNs     []int64 `json:"late_ns,omitempty"`
	Spinners   int     `json:"spinners,omitempty"`
	// Stopping-time histogram from runtime/metrics: bucket upper bounds
	// (seconds) and counts.
	StopBounds []float64 `json:"stop_bounds_s,omitempty"`
	StopCounts []uint64  `json:"stop_counts,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: peers spawn|switch|pingpong|idle|sleeper [-n N]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	n := fs.Int("n", 100000, "size: goroutines, switches, round trips or sleeps")
	sleep := fs.Duration("sleep", time.Millisecond, "sleeper: how long each sleep asks for")
	nocall := fs.Bool("nocall", false, "sleeper: the spinner's loop makes no call")
	spinners := fs.Int("spinners", 1, "stw: call-free spinning goroutines")
	_ = fs.Parse(os.Args[2:])

	r := result{
		Bench:      cmd,
		Go:         runtime.Version(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GODEBUG:    os.Getenv("GODEBUG"),
		N:          *n,
	}
	switch cmd {
	case "spawn":
		spawn(&r)
	case "switch":
		contextSwitch(&r)
	case "pingpong":
		pingPong(&r)
	case "idle":
		idle(&r)
	case "sleeper":
		sleeper(&r, *sleep, *nocall)
	case "stw":
		stw(&r, *spinners)
	default:
		fmt.Fprintf(os.Stderr, "peers: unknown benchmark %q\n", cmd)
		os.Exit(2)
	}
	out, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
}

func (r *result) timed(ops int64, elapsed time.Duration) {
	r.ElapsedNs = elapsed.Nanoseconds()
	r.Ops = ops
	r.NsPerOp = float64(r.ElapsedNs) / float64(ops)
}

// spawn: n goroutines that each bump a counter and exit; the spawner
// yields until all have run. Per goroutine: spawn, first run, exit.
func spawn(r *result) {
	var count int64
	n := int64(r.N)
	t0 := time.Now()
	for i := int64(0); i < n; i++ {
		go func() { atomic.AddInt64(&count, 1) }()
	}
	for atomic.LoadInt64(&count) < n {
		runtime.Gosched()
	}
	r.timed(n, time.Since(t0))
}

// contextSwitch: two goroutines each calling runtime.Gosched; at
// GOMAXPROCS=1 every Gosched switches to the other one. n Gosched calls in
// the timed goroutine make 2n switches.
func contextSwitch(r *result) {
	var stop, started int32
	done := make(chan struct{})
	go func() {
		atomic.StoreInt32(&started, 1)
		for atomic.LoadInt32(&stop) == 0 {
			runtime.Gosched()
		}
		close(done)
	}()
	for atomic.LoadInt32(&started) == 0 {
		runtime.Gosched()
	}
	t0 := time.Now()
	for i := 0; i < r.N; i++ {
		runtime.Gosched()
	}
	elapsed := time.Since(t0)
	atomic.StoreInt32(&stop, 1)
	<-done
	r.timed(2*int64(r.N), elapsed)
}

// pingPong: a value sent over an unbuffered channel and echoed back over
// another; one op is a round trip.
func pingPong(r *result) {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for v := range ping {
			pong <- v
		}
	}()
	ping <- 0 // the echo goroutine is running before the clock starts
	<-pong
	t0 := time.Now()
	for i := 0; i < r.N; i++ {
		ping <- i
		<-pong
	}
	elapsed := time.Since(t0)
	close(ping)
	r.timed(int64(r.N), elapsed)
}

// idle: n goroutines parked in a receive from a channel nobody sends on.
// RSS from /proc/self/status before the first spawn and once all have
// parked.
func idle(r *result) {
	block := make(chan int)
	var wg sync.WaitGroup
	runtime.GC()
	before := vmRSSKiB()
	wg.Add(r.N)
	for i := 0; i < r.N; i++ {
		go func() {
			wg.Done()
			<-block
		}()
	}
	wg.Wait()
	// The last goroutines to call Done may not have parked yet.
	time.Sleep(10 * time.Millisecond)
	after := vmRSSKiB()
	r.RSSBeforeK, r.RSSAfterK = before, after
	if r.N > 0 {
		r.BytesPerG = float64(after-before) * 1024 / float64(r.N)
	}
}

func vmRSSKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// stop is never set: it only gives the spinner's loop an exit, so the
// compiler keeps the loop, the load and the call (a `for { x++ }` would
// become a bare jump).
var stop int32
var sink uint64

// step is not a leaf (it calls mix), so it keeps the stack-bound check in
// its prologue: the cooperative preemption point the spinner passes on
// every iteration. A small leaf function would be compiled NOSPLIT,
// without the check, and only asynchronous preemption could stop the loop.
//
//go:noinline
func step(x uint64) uint64 { return mix(x) + 1 }

//go:noinline
func mix(x uint64) uint64 { return x*6364136223846793005 + 1442695040888963407 }

// spinNoCall is spin without the call: a loop only asynchronous
// preemption can stop.
func spinNoCall(started *int32) {
	atomic.StoreInt32(started, 1)
	x := uint64(1)
	for atomic.LoadInt32(&stop) == 0 {
		x = x*6364136223846793005 + 1442695040888963407
	}
	sink = x
}

func spin(started *int32) {
	atomic.StoreInt32(started, 1)
	x := uint64(1)
	for atomic.LoadInt32(&stop) == 0 {
		x = step(x)
	}
	sink = x
}

// sleeper: the main goroutine sleeps n times for `d` while another
// goroutine spins; each sleep's lateness is (actual - d).
func sleeper(r *result, d time.Duration, nocall bool) {
	var started int32
	if nocall {
		go spinNoCall(&started)
	} else {
		go spin(&started)
	}
	for atomic.LoadInt32(&started) == 0 {
		runtime.Gosched()
	}
	late := make([]int64, r.N)
	for i := range late {
		t0 := time.Now()
		time.Sleep(d)
		late[i] = int64(time.Since(t0) - d)
	}
	r.SleepNs = d.Nanoseconds()
	r.LateNs = late
}

// stw: n runtime.GC() calls while k call-free loops spin; the runtime's
// own histogram of how long each stop-the-world took to stop everything.
func stw(r *result, k int) {
	var started int32
	for i := 0; i < k; i++ {
		go spinNoCall(&started)
	}
	for atomic.LoadInt32(&started) == 0 {
		runtime.Gosched()
	}
	for i := 0; i < r.N; i++ {
		runtime.GC()
	}
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		fmt.Fprintln(os.Stderr, "peers: no /sched/pauses/stopping/gc:seconds in this Go")
		os.Exit(1)
	}
	h := s[0].Value.Float64Histogram()
	r.Spinners = k
	// Upper bounds; JSON has no infinity, so the open last bucket says -1.
	for _, b := range h.Buckets[1:] {
		if math.IsInf(b, 1) {
			b = -1
		}
		r.StopBounds = append(r.StopBounds, b)
	}
	r.StopCounts = h.Counts
}
