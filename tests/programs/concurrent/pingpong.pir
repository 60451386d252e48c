; Two goroutines bounce a counter over unbuffered channels.
; expect-status: 0
; expect-stdout: i=20000

func @pong(%in: chan, %out: chan) {
loop:
    %v = recv %in
    %z = eq %v, -1
    br %z, done, back
back:
    %w = add %v, 1
    send %out, %w
    jmp loop
done:
    ret
}
func @main() {
    %a = chan 0
    %b = chan 0
    spawn @pong(%a, %b)
    %i = const 0
loop:
    send %a, %i
    %i = recv %b
    %c = lt %i, 20000
    br %c, loop, done
done:
    send %a, -1
    print "i={}", %i
    ret
}
