; One P, cooperative preemption only: a loop with no call and no runtime
; operation is never preempted, so main never runs again.
; flags: --timeout 1 --preempt coop
; expect-status: 3
; expect-stderr: @spin in block loop
; expect-stderr: reason: loop @spin:loop has no preemption point in coop mode
; jit-only: the interpreter's diagnosis has no machine PC to describe
set procs = 1

func @spin() {
    %i = const 0
loop:
    %i = add %i, 1
    jmp loop
}

func @main() {
    spawn @spin()
    sleep 1000
    print "main woke"
    ret
}
