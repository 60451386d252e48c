; error: 2:11: 'opt' must be 0 or 1, not 2
set opt = 2
