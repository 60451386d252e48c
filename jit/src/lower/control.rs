//! Control flow, written once: jumps and branches, the loop back-edge
//! protocol of each preemption mode, and the out-of-line paths (the
//! stack check, faults, write barriers, back-edge yields).
//!
//! # Back-edges
//!
//! Every loop back-edge is one unconditional direct jump
//! ([`Machine::jump`]), recorded as a [`BackEdge`](crate::code::BackEdge),
//! and before it what the preemption mode puts there:
//!
//! - `coop`, `async`: nothing;
//! - `poll`: a test of the poll word ([`Machine::poll_check`]), recorded as
//!   a poll site, branching to a yield out of line;
//! - `trap`: a load from the poll page ([`Machine::poll_page_load`]), the
//!   poll site, which faults when the page is armed (the fault handler
//!   finds it in the table and redirects into the stub);
//! - `patch`: nothing but, where the architecture needs it, padding that
//!   makes the branch's patchable word single-copy atomic to store
//!   ([`Machine::align_patchable_branch`]); the branch gets a trampoline
//!   out of line, recorded with it as a patch site, which the runtime
//!   points the branch at while a stop is requested.
//!
//! A yield (poll's slow path, patch's trampoline) enters the preemption
//! stub as a signal's redirect would, with the jump to the loop head as the
//! resume address, then takes that jump: the stub's frame is the same
//! whichever mechanism stopped the goroutine.

use dynasmrt::{DynamicLabel, DynasmLabelApi};

use super::function::Lower;
use super::machine::{Machine, OldRef, Test};
use crate::abi::{fault_request, FaultCode, RuntimeOp};
use crate::code::{CallKind, UnsafeKind};
use crate::ir::{BlockId, PreemptMode, Span};

/// An out-of-line path, emitted after the function's blocks.
#[derive(Debug)]
pub(super) struct Cold {
    pub label: DynamicLabel,
    pub block: BlockId,
    pub span: Span,
    pub kind: ColdKind,
}

#[derive(Debug)]
pub(super) enum ColdKind {
    /// The prologue's stack check failed; resume at the check.
    StackCheck { resume: DynamicLabel },
    /// A fault without operands.
    Fault(FaultCode, u32),
    /// Index out of range: the object is in RESULT, the index in INDEX.
    IndexOutOfRange,
    /// `get` or `getref` found a tag it does not read: a type mismatch, or
    /// a freed object's poison.
    SlotTag,
    /// The write barrier's slow path: shade the old ref, then resume at
    /// the store.
    Barrier { resume: DynamicLabel, old: OldRef },
    /// A back-edge's yield: enter the preemption stub, then go on to the
    /// loop head.
    Yield {
        target: DynamicLabel,
        /// The patchable branch this is the trampoline of.
        patch: Option<usize>,
    },
}

impl<M: Machine> Lower<'_, M> {
    pub(super) fn cold_label(
        &mut self,
        block: BlockId,
        span: Span,
        kind: ColdKind,
    ) -> DynamicLabel {
        let label = self.label();
        self.cold.push(Cold {
            label,
            block,
            span,
            kind,
        });
        label
    }

    /// Control transfer from the end of `from` to `to`. A loop back-edge is
    /// always an explicit jump, recorded; other jumps to the next block in
    /// layout vanish.
    pub(super) fn jump(&mut self, from: BlockId, to: BlockId) {
        if self.plan.falls_into(from, to) && !self.plan.is_back_edge(from, to) {
            return;
        }
        self.jump_always(from, to);
    }

    /// An explicit jump from `from` to `to`, even to the next block.
    pub(super) fn jump_always(&mut self, from: BlockId, to: BlockId) {
        if self.plan.is_back_edge(from, to) {
            self.back_edge(from, to);
        } else {
            let target = self.block_labels[to.index()];
            M::jump(self, target);
        }
    }

    /// A loop back-edge from `from` to `to`, and what the preemption mode
    /// puts on it (see the module's comment).
    fn back_edge(&mut self, from: BlockId, to: BlockId) {
        let target = self.block_labels[to.index()];
        let span = self.func.span;
        match self.mode {
            PreemptMode::Poll => {
                let at = self.off();
                let slow = self.label();
                M::poll_check(self, slow);
                self.meta.poll_site(at, self.off() - at);
                let kind = ColdKind::Yield {
                    target,
                    patch: None,
                };
                self.cold.push(Cold {
                    label: slow,
                    block: from,
                    span,
                    kind,
                });
            }
            PreemptMode::Trap => {
                M::poll_page_address(self);
                let load = self.off();
                M::poll_page_load(self);
                self.meta.poll_site(load, self.off() - load);
            }
            PreemptMode::Patch => M::align_patchable_branch(self),
            PreemptMode::Coop | PreemptMode::Async => {}
        }
        let at = self.off();
        M::jump(self, target);
        let len = self.off() - at;
        self.meta.back_edge(at, len, from, to);
        if self.mode == PreemptMode::Patch {
            // The word the runtime rewrites lies inside the branch and
            // inside one aligned 8-byte word: one store replaces it whole.
            let word = M::patch_branch(at, at).offset;
            assert!(
                word + 4 <= len && (at + word) % 8 <= 4,
                "a patchable back-edge's word lies inside it and is single-copy atomic"
            );
            let tramp = self.label();
            let kind = ColdKind::Yield {
                target,
                patch: Some(at),
            };
            self.cold.push(Cold {
                label: tramp,
                block: from,
                span,
                kind,
            });
        }
    }

    /// Conditional control transfer: to `then_` when `t` holds, else to
    /// `else_`. Back-edges stay unconditional jumps.
    pub(super) fn branch(&mut self, from: BlockId, t: Test, then_: BlockId, else_: BlockId) {
        let back = |e: &Self, to: BlockId| e.plan.is_back_edge(from, to);
        let (then_label, else_label) = (
            self.block_labels[then_.index()],
            self.block_labels[else_.index()],
        );
        if back(self, then_) && !back(self, else_) {
            M::branch_if(self, t.inverse(), else_label);
            self.jump(from, then_);
        } else if back(self, then_) {
            let other = self.label();
            M::branch_if(self, t, other);
            self.jump(from, else_);
            self.ops.dynamic_label(other);
            self.jump(from, then_);
        } else if self.plan.falls_into(from, then_) && !back(self, else_) {
            M::branch_if(self, t.inverse(), else_label);
        } else {
            M::branch_if(self, t, then_label);
            self.jump(from, else_);
        }
    }

    // ---- out-of-line paths ----------------------------------------------------

    /// Emits the out-of-line paths, the write barriers' last.
    pub(super) fn cold_paths(&mut self) {
        let (barriers, others): (Vec<Cold>, Vec<Cold>) = std::mem::take(&mut self.cold)
            .into_iter()
            .partition(|c| matches!(c.kind, ColdKind::Barrier { .. }));
        for cold in others.into_iter().chain(barriers) {
            self.cold_path(cold);
        }
    }

    fn cold_path(&mut self, cold: Cold) {
        self.ops.dynamic_label(cold.label);
        let (request, kind) = match cold.kind {
            ColdKind::Barrier { resume, old } => {
                // Still inside the barrier, so an unsafe region of its own.
                self.meta.begin_unsafe(UnsafeKind::WriteBarrier, self.off());
                M::shade_old_ref(self, resume, old);
                M::jump(self, resume);
                self.meta.end_unsafe(self.off());
                return;
            }
            ColdKind::Yield { target, patch } => {
                if let Some(branch) = patch {
                    self.meta.patch_site(branch, self.off());
                }
                self.enter_preempt_stub();
                M::jump(self, target);
                return;
            }
            ColdKind::StackCheck { .. } => {
                // The stack check's out-of-line path belongs to the
                // prologue: the frame is not complete, and a pending stop
                // request that sent the goroutine here must still be
                // pending when the runtime call asks why (an asynchronous
                // stop in between would leave it to find an unpoisoned
                // guard, and report a stack overflow).
                self.meta.begin_unsafe(UnsafeKind::FrameSetup, self.off());
                (RuntimeOp::StackCheck.request(0), CallKind::StackCheck)
            }
            ColdKind::SlotTag => {
                M::slot_tag_operands(self);
                (
                    fault_request(FaultCode::SlotTypeMismatch, 0),
                    CallKind::Fault,
                )
            }
            ColdKind::Fault(code, msg) => (fault_request(code, msg), CallKind::Fault),
            ColdKind::IndexOutOfRange => {
                M::index_operands(self);
                (
                    fault_request(FaultCode::IndexOutOfRange, 0),
                    CallKind::Fault,
                )
            }
        };
        self.call_runtime(request, cold.block, cold.span, kind);
        if let ColdKind::StackCheck { resume } = cold.kind {
            M::jump(self, resume);
            self.meta.end_unsafe(self.off());
        } else {
            M::trap(self);
        }
    }

    /// Enters the preemption stub as a signal's redirect does. Where that
    /// takes several instructions, the stack pointer and link register are
    /// half way into the stub's frame between them: a runtime transition.
    fn enter_preempt_stub(&mut self) {
        if M::STUB_ENTRY_IS_A_SEQUENCE {
            self.meta
                .begin_unsafe(UnsafeKind::RuntimeTransition, self.off());
        }
        let stub = self.preempt_stub;
        M::enter_stub(self, stub);
        if M::STUB_ENTRY_IS_A_SEQUENCE {
            self.meta.end_unsafe(self.off());
        }
    }
}
