; error: 2:13: 'procs' must be an integer from 1 to 1024, not 0
set procs = 0
