//! The `preempt` command line: argument parsing, output formats, exit codes.
