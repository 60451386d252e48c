module preempt.local/peers

go 1.19
