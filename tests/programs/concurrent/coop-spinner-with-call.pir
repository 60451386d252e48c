; The same spinner with a call in its loop: the call's stack check is a
; preemption point, so the monitor's request at the end of the quantum
; stops it and main runs.
; flags: --preempt coop
; expect-status: 0
; expect-stdout: main woke
set procs = 1

func @f(%x: i64) -> i64 {
    %y = add %x, 1
    ret %y
}

func @spin() {
    %i = const 0
loop:
    %i = call @f(%i)
    jmp loop
}

func @main() {
    spawn @spin()
    sleep 1000
    print "main woke"
    ret
}
