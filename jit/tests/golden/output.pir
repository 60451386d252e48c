; Output, checks and foreign calls; string escapes.
func @fail() {
    panic "boom: \"quoted\"\tand\\slash\nnext line"
}

func @main() {
    %x = const 3
    print "tab\there, newline\nthere, quote \" and backslash \\: {}", %x
    print ""
    print "{}{}", %x, %x
    print "braces { } and }{ are text"
    assert %x, "x is set; \"quotes\" survive"
    ccall sleep, 10
    ccall spin, %x
    ccall block_preempt_signal
    ccall unblock_preempt_signal
    ccall ignore_preempt_signal
    ccall restore_preempt_signal
    call @fail()
    ret
}
