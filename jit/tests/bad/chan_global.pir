; error: 2:12: globals are i64 or ref, not chan
global @c: chan
