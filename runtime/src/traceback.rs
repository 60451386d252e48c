//! Go-style tracebacks of JIT goroutines, by walking the frame-pointer
//! chain of a parked goroutine.
//!
//! Every JIT frame starts with the frame record `[fp] = caller's fp,
//! [fp + 8] = return address` (x86-64 `push rbp; mov rbp, rsp`, aarch64
//! `stp x29, x30, [sp, -16]!; mov x29, sp`). A parked goroutine's SP points
//! at the return address of its last call into the runtime; each return
//! address maps to a call site in the tables, which names the function,
//! block and source position. The goroutine entry stub starts the chain
//! with fp = 0.

use preempt_jit::fault::Frame;
use preempt_jit::module::Module;

/// Reads a word of a parked goroutine's stack, if `addr` lies in it.
pub trait StackMemory {
    fn read(&self, addr: usize) -> Option<u64>;
}

/// Frames of a goroutine whose last call returns to `return_pc`, with
/// frame pointer `fp`, innermost first. Stops at the first address that is
/// not a call site (the entry stub) or a frame pointer outside the stack.
pub fn walk(module: &Module, mem: &dyn StackMemory, return_pc: usize, fp: usize) -> Vec<Frame> {
    let mut frames = Vec::new();
    let (mut ret, mut fp) = (return_pc, fp);
    // Bounded so a corrupted chain cannot loop forever.
    for _ in 0..10_000_000 {
        let Some(site) = module.tables.call_site(ret) else {
            break;
        };
        frames.push(Frame {
            func: module.names.function(site.func).to_string(),
            block: module.names.block(site.func, site.block).to_string(),
            line: site.span.line,
            col: site.span.col,
        });
        if fp == 0 {
            break;
        }
        match (mem.read(fp), mem.read(fp + 8)) {
            (Some(next_fp), Some(next_ret)) if next_fp == 0 || next_fp as usize > fp => {
                fp = next_fp as usize;
                ret = next_ret as usize;
            }
            _ => break,
        }
    }
    frames
}
