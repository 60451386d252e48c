; Every setting key, in an order other than the printer's.
set quantum_us = 2_500
set nosplit_leaves = 1
set opt = 0
set preempt = patch
set gc_percent = -1     ; negative turns the GC off
set procs = 0x10

func @main() {
    ret
}
