// Bug 13 of the seed, "Custom signal handler clobbering SIGURG", as Go:
// the seed's program (its C side in the preamble) and the variants its
// diagnosis and its fix talk about. The scenario is the first argument:
//
//	as-written     the seed's program: C sets SIGURG to SIG_IGN, a
//	               goroutine spins at GOMAXPROCS(1), main sleeps 2 s
//	counted        the same with a C handler that counts SIGURG instead
//	               of SIG_IGN (Go's handler is out of the way just the
//	               same); a C thread prints the count after 1 s and ends
//	               the process
//	no-handler     the seed's first fix: C does not touch SIGURG
//	reset          the seed's fix as written: signal.Reset(syscall.SIGURG)
//	               right after the C call
//	ignore-notify  reinstalling Go's handler another way, right after
//	               the C call: signal.Ignore then signal.Notify
//	late           Go's handler put back by C 100 ms after the C call,
//	               once the spinner has run for a time slice
//	at-load        the seed's other fix: the C code runs before the Go
//	               runtime initialises (a C constructor sets SIG_IGN)
//
// Each prints what the seed's program prints ("hi", if main ever wakes);
// the variants sleep 200 ms (late: 300 ms) instead of 2 s. Figures:
//
//	measure ignored 0|1  SIGURG's handler is SIG_IGN when the spinner starts
//	measure signals N    (counted) SIGURGs delivered in the spinner's first second
package main

/*
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// The seed's C side.
void install_handler() {
	signal(SIGURG, SIG_IGN);
}

// at-load: the same, run by the dynamic loader before the Go runtime
// starts (glibc passes argc and argv to the executable's constructors).
__attribute__((constructor)) static void at_load(int argc, char **argv, char **envp) {
	if (argc > 1 && strcmp(argv[1], "at-load") == 0)
		signal(SIGURG, SIG_IGN);
}

static int sigurg_ignored(void) {
	struct sigaction sa;
	sigaction(SIGURG, NULL, &sa);
	return sa.sa_handler == SIG_IGN;
}

static void ms_sleep(long ms) {
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&t, NULL);
}

// counted: a handler that only counts, on the signal stack Go gave the
// thread, and a thread that reports after 1 s.
static volatile long delivered;
static void count_sigurg(int sig) { delivered++; }
static void *report(void *arg) {
	ms_sleep(1000);
	char buf[64];
	int n = snprintf(buf, sizeof buf, "measure signals %ld\n", delivered);
	write(1, buf, n);
	_exit(0);
}
static void install_counter(void) {
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = count_sigurg;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigaction(SIGURG, &sa, NULL);
	pthread_t t;
	pthread_create(&t, NULL, report, NULL);
}

// late: Go's handler, saved before the seed's C call and put back later.
static struct sigaction go_handler;
static void save_go_handler(void) { sigaction(SIGURG, NULL, &go_handler); }
static void *put_back(void *arg) {
	ms_sleep(100);
	sigaction(SIGURG, &go_handler, NULL);
	return NULL;
}
static void put_back_later(void) {
	pthread_t t;
	pthread_create(&t, NULL, put_back, NULL);
}
*/
import "C"

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	scenario := "as-written"
	if len(os.Args) > 1 {
		scenario = os.Args[1]
	}
	runtime.GOMAXPROCS(1)
	sleep := 200 * time.Millisecond
	switch scenario {
	case "as-written":
		C.install_handler() // installs SIG_IGN for SIGURG
		sleep = 2 * time.Second
	case "counted":
		C.install_counter()
		sleep = 2 * time.Second
	case "no-handler", "at-load":
	case "reset":
		C.install_handler()
		signal.Reset(syscall.SIGURG)
	case "ignore-notify":
		C.install_handler()
		signal.Ignore(syscall.SIGURG)
		signal.Notify(make(chan os.Signal, 1), syscall.SIGURG)
	case "late":
		C.save_go_handler()
		C.install_handler()
		C.put_back_later()
		sleep = 300 * time.Millisecond
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario)
		os.Exit(2)
	}
	fmt.Println("measure ignored", C.sigurg_ignored())

	go func() {
		for {
		}
	}()

	time.Sleep(sleep)
	fmt.Println("hi")
}
