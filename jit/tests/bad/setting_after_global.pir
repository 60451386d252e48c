; error: 3:1: 'set' lines come before every global and function
global @g: i64
set procs = 2
