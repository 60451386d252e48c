; error: 2:5: unknown setting 'threads'
set threads = 4
