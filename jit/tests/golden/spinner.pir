; The register-hoisted-load example of IR.md, verbatim: header settings,
; both kinds of global, comments after code.
set procs = 1            ; optional header settings (CLI flags override them)
set preempt = async      ; async | coop | poll | trap | patch
set gc_percent = 100
set opt = 1              ; 0: no optimisation, 1: LICM and friends (default)

global @done: i64 = 0
global @root: ref        ; refs start as nil

func @spinner() {
loop:
    %v = load @done      ; plain load: at opt=1 it is hoisted out of the loop
    br %v, out, loop
out:
    print "done!"
    ret
}

func @main() {
    spawn @spinner()
    store @done, 1
    print "flag set"
    ret
}
