module preempt.example/bugs

go 1.22
