//! [`CodeBuffer`]: the buffer code is assembled into, with labels and
//! relocations: dynasmrt's `VecAssembler`, made of the same components
//! (its label and relocation registries), at base address 0 (the code is
//! position-independent), its bytes in a [`CodeRoom`]: memory of their
//! own, whose reserved room the compiler can fault in on another thread
//! ([`CodeBuffer::spare`]) and which publication makes executable where
//! it is.

use dynasmrt::components::{LabelRegistry, PatchLoc, RelocRegistry, StaticLabel};
use dynasmrt::relocations::Relocation;
use dynasmrt::{
    AssemblyOffset, DynamicLabel, DynasmApi, DynasmError, DynasmLabelApi, LabelKind, TargetKind,
};

use super::prefault::Prefault;
use super::room::CodeRoom;

/// Machine code being assembled, its labels and the references to them.
#[derive(Debug)]
pub struct CodeBuffer<R: Relocation> {
    bytes: CodeRoom,
    labels: LabelRegistry,
    relocs: RelocRegistry<R>,
    /// The first error met while assembling, reported by the next commit.
    error: Option<DynasmError>,
}

impl<R: Relocation> Default for CodeBuffer<R> {
    fn default() -> Self {
        CodeBuffer::with_capacity(0, 0, 0)
    }
}

impl<R: Relocation> CodeBuffer<R> {
    /// An empty buffer with room for `bytes` of code, `labels` dynamic
    /// labels and `references` references to them.
    pub fn with_capacity(bytes: usize, labels: usize, references: usize) -> Self {
        CodeBuffer {
            bytes: CodeRoom::with_capacity(bytes),
            labels: LabelRegistry::with_capacity(0, 0, labels),
            relocs: RelocRegistry::with_capacity(0, references),
            error: None,
        }
    }

    pub fn new_dynamic_label(&mut self) -> DynamicLabel {
        self.labels.new_dynamic_label()
    }

    /// Resolves every reference made so far, or reports the first error
    /// (a label referenced but not defined, a target out of reach).
    pub fn commit(&mut self) -> Result<(), DynasmError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for (loc, label) in self.relocs.take_statics() {
            let target = self.labels.resolve_static(&label)?;
            if loc
                .patch(&mut self.bytes[loc.range(0)], 0, target.0)
                .is_err()
            {
                return Err(DynasmError::ImpossibleRelocation(if label.is_global() {
                    TargetKind::Global(label.get_name())
                } else {
                    TargetKind::Local(label.get_name())
                }));
            }
        }
        for (loc, id) in self.relocs.take_dynamics() {
            let target = self.labels.resolve_dynamic(id)?;
            if loc
                .patch(&mut self.bytes[loc.range(0)], 0, target.0)
                .is_err()
            {
                return Err(DynasmError::ImpossibleRelocation(TargetKind::Dynamic(id)));
            }
        }
        Ok(())
    }

    /// The code, every reference resolved.
    pub fn finalize(mut self) -> Result<CodeRoom, DynasmError> {
        self.commit()?;
        Ok(self.bytes)
    }

    /// A reference from the instruction that ends here.
    fn here(&self, target_offset: isize, field_offset: u8, ref_offset: u8, kind: R) -> PatchLoc<R> {
        PatchLoc::new(self.offset(), target_offset, field_offset, ref_offset, kind)
    }

    /// Adds the room reserved for code not yet assembled to `p`.
    pub fn spare(&self, p: &mut Prefault) {
        self.bytes.spare(p);
    }
}

impl<R: Relocation> Extend<u8> for CodeBuffer<R> {
    #[inline]
    fn extend<T: IntoIterator<Item = u8>>(&mut self, iter: T) {
        self.bytes.extend_from_iter(iter.into_iter())
    }
}

impl<'a, R: Relocation> Extend<&'a u8> for CodeBuffer<R> {
    #[inline]
    fn extend<T: IntoIterator<Item = &'a u8>>(&mut self, iter: T) {
        self.bytes.extend_from_iter(iter.into_iter().copied())
    }
}

impl<R: Relocation> DynasmApi for CodeBuffer<R> {
    fn offset(&self) -> AssemblyOffset {
        AssemblyOffset(self.bytes.len())
    }

    #[inline]
    fn push(&mut self, byte: u8) {
        self.bytes.push(byte);
    }

    fn align(&mut self, alignment: usize, with: u8) {
        let len = self.bytes.len().next_multiple_of(alignment);
        self.bytes.pad_to(len, with);
    }
}

impl<R: Relocation> DynasmLabelApi for CodeBuffer<R> {
    type Relocation = R;

    fn local_label(&mut self, name: &'static str) {
        let offset = self.offset();
        self.labels.define_local(name, offset);
    }

    fn global_label(&mut self, name: &'static str) {
        let offset = self.offset();
        if let Err(e) = self.labels.define_global(name, offset) {
            self.error = Some(e);
        }
    }

    fn dynamic_label(&mut self, id: DynamicLabel) {
        let offset = self.offset();
        if let Err(e) = self.labels.define_dynamic(id, offset) {
            self.error = Some(e);
        }
    }

    fn global_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let loc = self.here(target_offset, field_offset, ref_offset, kind);
        self.relocs.add_static(StaticLabel::global(name), loc);
    }

    fn dynamic_relocation(
        &mut self,
        id: DynamicLabel,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let loc = self.here(target_offset, field_offset, ref_offset, kind);
        self.relocs.add_dynamic(id, loc);
    }

    fn forward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let label = match self.labels.place_local_reference(name) {
            Some(label) => label.next(),
            None => StaticLabel::first(name),
        };
        let loc = self.here(target_offset, field_offset, ref_offset, kind);
        self.relocs.add_static(label, loc);
    }

    fn backward_relocation(
        &mut self,
        name: &'static str,
        target_offset: isize,
        field_offset: u8,
        ref_offset: u8,
        kind: R,
    ) {
        let Some(label) = self.labels.place_local_reference(name) else {
            self.error = Some(DynasmError::UnknownLabel(LabelKind::Local(name)));
            return;
        };
        let loc = self.here(target_offset, field_offset, ref_offset, kind);
        self.relocs.add_static(label, loc);
    }

    fn value_relocation(&mut self, value: usize, field_offset: u8, ref_offset: u8, kind: R) {
        let loc = self.here(0, field_offset, ref_offset, kind);
        if loc.patch(&mut self.bytes[loc.range(0)], 0, value).is_err() {
            self.error = Some(DynasmError::ImpossibleRelocation(TargetKind::Value(value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use dynasmrt::x64::X64Relocation;
    use dynasmrt::{dynasm, VecAssembler};

    use super::*;

    /// The same code with labels of every kind, assembled by `ops`.
    fn sample<A: DynasmLabelApi<Relocation = X64Relocation>>(ops: &mut A, l: DynamicLabel) {
        dynasm!(ops
            ; .arch x64
            ; ->start:
            ; jmp >forward
            ; nop
            ; forward:
            ; jmp <forward
            ; jmp =>l
            ; call ->start
            ; .align 16, 0xcc
            ; =>l
            ; ret
            ; lea rax, [->start]
        );
    }

    #[test]
    fn assembles_what_dynasmrts_vec_assembler_does() {
        let mut ours = CodeBuffer::<X64Relocation>::with_capacity(64, 1, 1);
        let l = ours.new_dynamic_label();
        sample(&mut ours, l);
        let mut theirs = VecAssembler::<X64Relocation>::new(0);
        let l = theirs.new_dynamic_label();
        sample(&mut theirs, l);
        let ours = ours.finalize().expect("every label is defined");
        assert!(ours.len() > 16);
        assert_eq!(
            &ours[..],
            &theirs.finalize().expect("every label is defined")[..]
        );
    }

    #[test]
    fn an_undefined_label_is_an_error_not_a_panic() {
        let mut ops = CodeBuffer::<X64Relocation>::default();
        let l = ops.new_dynamic_label();
        dynasm!(ops ; .arch x64 ; jmp =>l);
        assert!(ops.commit().is_err());
    }
}
