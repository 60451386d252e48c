; calls: x = step(x) n times, step a leaf function (one LCG step). The
; loop's only preemption point under `coop` is @step's entry check.
func @step(%x: i64) -> i64 {
    %y = mul %x, 6364136223846793005
    %y = add %y, 1442695040888963407
    ret %y
}

func @kernel(%n: i64) -> i64 {
    %x = const 1
    %i = const 0
    br 1, loop, done
loop:
    %x = call @step(%x)
    %i = add %i, 1
    %c = lt %i, %n
    br %c, loop, done
done:
    ret %x
}
