//! Golden encodings of the aarch64 hooks: the shared cases of
//! `lower/golden.rs` and the ones only this backend has, checked against
//! `emit_tests.golden` beside this file (`BLESS=1` rewrites it).

use super::{Aarch64, FP, SP, X0};
use crate::lower::golden::{check, Case};
use crate::lower::machine::Slot;
use crate::lower::Machine;

#[test]
fn hooks_encode_as_the_golden_file_says() {
    check::<Aarch64>(extra(), "src/isa/aarch64/emit_tests.golden");
}

fn extra() -> Vec<Case<Aarch64>> {
    let mut cases = Vec::new();
    // Frame slots in each addressing form: scaled, unscaled, through x17.
    for (base, offset) in [(SP, 32760), (SP, 32768), (FP, -16), (FP, 255), (SP, -4096)] {
        let slot = Slot { base, offset };
        cases.push(Case::new(
            format!(
                "load_slot x0 <- [{}, {offset}]; store_slot",
                super::TABLE.name(base)
            ),
            move |cx, _| {
                Aarch64::load_slot(cx, X0, slot);
                Aarch64::store_slot(cx, slot, X0);
            },
        ));
    }
    // Frames too large for one add/sub immediate.
    for size in [0x1000, 0x12340, 0x123_4560] {
        cases.push(Case::new(
            format!("prologue, frame {size:#x}"),
            move |cx, l| {
                cx.frame.size = size;
                let check = cx.label();
                Aarch64::prologue(cx);
                Aarch64::stack_check(cx, check, l);
            },
        ));
    }
    cases
}
