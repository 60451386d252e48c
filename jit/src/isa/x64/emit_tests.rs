//! Golden encodings of the x86-64 hooks: the shared cases of
//! `lower/golden.rs` and the ones only this backend has, checked against
//! `emit_tests.golden` beside this file (`BLESS=1` rewrites it).

use dynasmrt::DynasmApi;

use super::{stubs, CTX, R11, RAX, RBP, RBX, RDX, X64};
use crate::lower::golden::{check, Case};
use crate::lower::Machine;

#[test]
fn hooks_encode_as_the_golden_file_says() {
    check::<X64>(extra(), "src/isa/x64/emit_tests.golden");
}

fn extra() -> Vec<Case<X64>> {
    let mut cases = Vec::new();
    // The padding that keeps a patchable displacement inside one aligned
    // 8-byte word, from every offset modulo 8.
    for k in 0..8 {
        cases.push(Case::new(
            format!("{k} nops; align_patchable_branch; jump"),
            move |cx: &mut crate::lower::Lower<'_, X64>, l| {
                for _ in 0..k {
                    cx.ops.push(0x90);
                }
                X64::align_patchable_branch(cx);
                X64::jump(cx, l);
            },
        ));
    }
    // The stubs' short forms, for a low and a high register each.
    for r in [RAX, RBX, RDX, RBP, 8, R11, 12, CTX] {
        let name = super::reg_name(r);
        cases.push(Case::new(
            format!("stubs::push {name}; pop {name}"),
            move |cx, _| {
                stubs::push(cx.ops, r);
                stubs::pop(cx.ops, r);
            },
        ));
        cases.push(Case::new(format!("stubs::zero {name}"), move |cx, _| {
            stubs::zero(cx.ops, r)
        }));
    }
    cases
}
