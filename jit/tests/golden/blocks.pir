; Layout: fall-through, unlabelled blocks after terminators, odd label
; names, tabs, blank lines and comments everywhere.


; a comment before the function
func @f(%n: i64) -> i64 {   ; comment after the brace
	%i = const 0		; a tab-indented line

; a comment line inside the body
loop.head_1:
    %i = add %i, 1
    %d = lt %i, %n
    br %d, loop.head_1, _out
_out:
    %i = mul %i, 2                  ; falls through
L2:
    ret %i
    print "unreachable: an unlabelled block after a terminator"
    ret 0
    jmp L2
}

func @main() {
    %r = call @f(3)
    print "{}", %r
    ret
    ret
}
