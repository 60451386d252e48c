//! Annotated disassembly of compiled PIR.
//!
//! Each machine instruction is shown with its offset, bytes and text, and
//! marked so a reader sees at a glance what the tables say about it: which
//! PIR instruction it implements, whether it lies in an unsafe region (and
//! of which kind), whether it is a loop back-edge, and whether it is a
//! global load that LICM hoisted out of a loop.
//!
//! Every table is sorted by address, so what the tables say about an
//! instruction is found by binary search: a listing costs its length
//! times a logarithm, however many functions, blocks and back-edges the
//! program has.

use std::fmt::Write;

use crate::code::{BackEdge, CodeTables, UnsafeKind};
use crate::ir::{printer, BlockId, FuncId, Program};
use crate::module::{Arch, Assembled};

/// One decoded machine instruction.
#[derive(Clone, Debug)]
pub struct DecodedInst {
    pub offset: usize,
    pub len: usize,
    pub text: String,
    /// The target of a direct branch or call, as an offset in the code.
    pub target: Option<usize>,
}

/// Decodes `code` (placed at offset 0) for `arch`, on any host.
pub fn decode(arch: Arch, code: &[u8], start: usize, end: usize) -> Vec<DecodedInst> {
    crate::isa::decode(arch, code, start, end)
}

/// The whole annotated listing of an assembled program.
pub fn listing(prog: &Program, asm: &Assembled, opt_level: u8) -> String {
    let t = &asm.tables;
    let mut out = String::new();
    writeln!(
        out,
        "; {} code for {} function(s), opt {opt_level}; {} bytes",
        asm.arch.name(),
        prog.funcs.len(),
        asm.code.len()
    )
    .unwrap();
    out.push_str(
        "; marks: [setup]/[teardown] frame set-up/tear-down, [rt] runtime-call transition,\n",
    );
    out.push_str(
        ";        [scratch] stub scratch register, [atomic] atomic sequence, [wb] write barrier:\n",
    );
    out.push_str(
        ";        unsafe regions, where an asynchronous preemption retries instead of stopping;\n",
    );
    let mode = prog
        .settings
        .preempt
        .unwrap_or(crate::ir::PreemptMode::Async);
    let carries = match mode {
        crate::ir::PreemptMode::Poll => "its poll, [poll], before it",
        crate::ir::PreemptMode::Trap => "its poll-page load, [poll], before it",
        crate::ir::PreemptMode::Patch => "nothing, but may be rewritten to its trampoline",
        crate::ir::PreemptMode::Coop | crate::ir::PreemptMode::Async => "no poll",
    };
    writeln!(
        out,
        ";        <== BACK-EDGE loop back-edge (--preempt {mode}: {carries}); HOISTED a load LICM moved out of a loop"
    )
    .unwrap();
    for f in &t.functions {
        out.push('\n');
        function_listing(&mut out, prog, asm, f.func, f.start, f.end, true);
    }
    out
}

/// The annotated listing of one function, a line per entry; without the
/// instruction bytes when `bytes` is false (for side-by-side views).
pub fn function_lines(prog: &Program, asm: &Assembled, fid: FuncId, bytes: bool) -> Vec<String> {
    let mut out = String::new();
    if let Some(f) = asm.tables.functions.iter().find(|f| f.func == fid) {
        function_listing(&mut out, prog, asm, fid, f.start, f.end, bytes);
    }
    out.lines().map(str::to_string).collect()
}

fn mark(kind: UnsafeKind) -> &'static str {
    match kind {
        UnsafeKind::FrameSetup => "[setup]",
        UnsafeKind::FrameTeardown => "[teardown]",
        UnsafeKind::RuntimeTransition => "[rt]",
        UnsafeKind::ScratchRegister => "[scratch]",
        UnsafeKind::AtomicSequence => "[atomic]",
        UnsafeKind::WriteBarrier => "[wb]",
    }
}

fn function_listing(
    out: &mut String,
    prog: &Program,
    asm: &Assembled,
    fid: FuncId,
    start: usize,
    end: usize,
    show_bytes: bool,
) {
    let t: &CodeTables = &asm.tables;
    let func = prog.func(fid);
    let params: Vec<String> = func
        .params
        .iter()
        .zip(&func.param_types)
        .map(|(&r, ty)| format!("%{}: {ty}", func.reg_name(r)))
        .collect();
    writeln!(out, "@{}({}):", func.name, params.join(", ")).unwrap();
    // Compact listings count from the function's start, branch targets too.
    let insts: Vec<DecodedInst> = if show_bytes {
        decode(asm.arch, &asm.code, start, end)
    } else {
        decode(asm.arch, &asm.code[start..end], 0, end - start)
            .into_iter()
            .map(|d| DecodedInst {
                offset: d.offset + start,
                target: d.target.map(|t| t.wrapping_add(start)),
                ..d
            })
            .collect()
    };
    // Calls into the runtime stubs are shown by the stub's name.
    let insts: Vec<DecodedInst> = insts
        .into_iter()
        .map(|mut d| {
            if let Some(stub) = d
                .target
                .filter(|t| !(start..end).contains(t))
                .and_then(|t| asm.tables.stub_at(t))
            {
                let mnemonic = d
                    .text
                    .split_whitespace()
                    .next()
                    .unwrap_or("call")
                    .to_string();
                d.text = format!("{mnemonic:<8}{}", stub.name);
            }
            d
        })
        .collect();
    // What the tables say about this function's code, searched in these
    // slices rather than in the whole program's tables. What the emitter
    // recorded while the function was open (its blocks, its back-edges)
    // lies in its code, `[start, end)`, too.
    let blocks = within(&t.blocks, start, end, |b| b.start);
    let inst_starts = within(&t.inst_starts, start, end, |s| t.inst_pc(s));
    let poll_sites = within(&t.poll_sites, start, end, |p| p.pc);
    let back_edge_sites = within(&t.back_edges, start, end, |e| e.pc);
    let patch_sites = within(&t.patch_sites, start, end, |p| p.pc);
    let hoisted_loads = within(&t.hoisted_loads, start, end, |h| h.pc);
    let blocks_end = blocks
        .iter()
        .filter(|b| b.func == fid)
        .map(|b| b.end)
        .max()
        .unwrap_or(0);
    // The function's back-edges by target, each target's in address order.
    let mut back_edges: Vec<&BackEdge> = back_edge_sites.iter().filter(|e| e.func == fid).collect();
    back_edges.sort_by_key(|e| e.to);
    let mut in_cold = false;
    for d in &insts {
        if let Some(b) = at(blocks, d.offset, |b| b.start)
            .iter()
            .find(|b| b.func == fid)
        {
            let cfg_note = loop_note(&back_edges, b.block, func);
            writeln!(out, "  {}:{cfg_note}", func.block_name(b.block)).unwrap();
        }
        // Out-of-line paths follow the blocks (the stack check's belongs
        // to the frame set-up region).
        let teardown = t
            .unsafe_region_at(d.offset)
            .is_some_and(|r| r.kind == UnsafeKind::FrameTeardown);
        if !in_cold
            && t.block_at(d.offset).is_none()
            && !teardown
            && d.offset > start
            && blocks_end <= d.offset
        {
            in_cold = true;
            out.push_str("  ; out-of-line paths (stack check, faults)\n");
        }
        let mut notes: Vec<String> = Vec::new();
        if let Some(s) = at(inst_starts, d.offset, |s| t.inst_pc(s))
            .iter()
            .rfind(|s| s.func == fid)
        {
            let block = &func.blocks[s.block.index()];
            let text = if s.index == u32::MAX {
                block
                    .term
                    .as_ref()
                    .map(|term| printer::terminator(func, &term.kind))
            } else {
                block
                    .insts
                    .get(s.index as usize)
                    .map(|i| printer::inst(prog, func, &i.kind))
            };
            if let Some(text) = text {
                notes.push(text);
            }
        }
        if let Some(r) = t.unsafe_region_at(d.offset) {
            notes.push(mark(r.kind).to_string());
        }
        if !at(poll_sites, d.offset, |p| p.pc).is_empty() {
            notes.push("[poll]".to_string());
        }
        if let Some(e) = at(back_edge_sites, d.offset, |e| e.pc).first() {
            notes.push(format!(
                "<== BACK-EDGE {} -> {}",
                func.block_name(e.from),
                func.block_name(e.to)
            ));
            if let Some(p) = at(patch_sites, d.offset, |p| p.pc).first() {
                notes.push(format!("(patchable: trampoline at {:06x})", p.tramp));
            }
        }
        if let Some(h) = at(hoisted_loads, d.offset, |h| h.pc).first() {
            notes.push(format!(
                "HOISTED load of @{} out of loop '{}'",
                prog.global(h.global).name,
                func.block_name(h.loop_header)
            ));
        }
        let line = if show_bytes {
            let bytes: String = asm.code[d.offset..d.offset + d.len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("    {:06x}  {:<22} {:<34}", d.offset, bytes, d.text)
        } else {
            format!("  {:04x}  {:<26}", d.offset - start, d.text)
        };
        if notes.is_empty() {
            writeln!(out, "{}", line.trim_end()).unwrap();
        } else {
            writeln!(out, "{line} ; {}", notes.join("  ")).unwrap();
        }
    }
}

/// The entries of `items`, sorted by `key`, whose key is `pc`.
fn at<T>(items: &[T], pc: usize, key: impl Fn(&T) -> usize) -> &[T] {
    let first = items.partition_point(|x| key(x) < pc);
    let n = items[first..].partition_point(|x| key(x) == pc);
    &items[first..first + n]
}

/// The entries of `items`, sorted by `key`, whose key is in `[start, end)`.
fn within<T>(items: &[T], start: usize, end: usize, key: impl Fn(&T) -> usize) -> &[T] {
    let first = items.partition_point(|x| key(x) < start);
    let n = items[first..].partition_point(|x| key(x) < end);
    &items[first..first + n]
}

/// " ; loop header (back-edges from ...)" for loop headers; `back_edges`
/// are the function's, sorted by target.
fn loop_note(back_edges: &[&BackEdge], b: BlockId, func: &crate::ir::Function) -> String {
    let first = back_edges.partition_point(|e| e.to < b);
    let from: Vec<String> = back_edges[first..]
        .iter()
        .take_while(|e| e.to == b)
        .map(|e| func.block_name(e.from))
        .collect();
    if from.is_empty() {
        String::new()
    } else {
        format!("    ; loop header (back-edge from {})", from.join(", "))
    }
}

/// The listing of the runtime stubs at the start of the code.
pub fn stubs_listing(asm: &Assembled) -> String {
    let mut out = String::new();
    for s in &asm.tables.stubs {
        writeln!(out, "stub {}:", s.name).unwrap();
        for d in decode(asm.arch, &asm.code, s.start, s.end) {
            let bytes: String = asm.code[d.offset..d.offset + d.len]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let unsafe_mark = asm
                .tables
                .unsafe_region_at(d.offset)
                .map_or("", |r| mark(r.kind));
            let line = format!(
                "    {:06x}  {:<22} {:<34} {unsafe_mark}",
                d.offset, bytes, d.text
            );
            writeln!(out, "{}", line.trim_end()).unwrap();
        }
    }
    out
}
