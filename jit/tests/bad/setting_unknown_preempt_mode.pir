; error: 2:15: 'preempt' must be one of async, coop, poll, trap, patch; found 'fast'
set preempt = fast
