; Channels and every select arm form.
func @main() {
    %c = chan 1
    %d = chan 0
    %timer = after 1_000
    notify %d
    send %c, 5
    select recv %c into %v -> got, recv %timer -> timeout, send %d, 1 -> sent, default -> none
got:
    print "got {}", %v
    jmp poll
timeout:
sent:
none:
poll:
    select default -> drain         ; default only: a plain jump
drain:
    select recv %c -> closed
closed:
    close %c
    %w = recv %c
    select recv %c into %w -> done, recv %d into %w -> done
done:
    print "{}", %w
    ret
}
