//! A loop that keeps every register busy, and what it must print: the
//! programs with which the redirect and the handler's hand-off show that
//! a goroutine stopped anywhere in it resumes with every register, flag
//! and PC as it was.
//!
//! The loop keeps 24 values live (more than the allocatable registers on
//! either architecture, so some live in callee-saved registers, some in
//! spill slots), uses the scratch registers (shifts by a register count,
//! division) and ends in a fused compare-and-branch, so a stop can land
//! while a scratch register holds a partial result or between a
//! flag-setting instruction and its branch. It runs until the global
//! `@stop` (the module's first global word) is set, then prints its
//! iteration count and its values, which [`expected`] recomputes.

const VALUES: usize = 24;

pub fn program() -> String {
    let mut s = String::from("global @stop: i64\n\nfunc @main() {\n");
    for i in 0..VALUES {
        s.push_str(&format!("    %a{i} = const {}\n", i * 7 + 1));
    }
    s.push_str("    %n = const 0\nloop:\n");
    for i in 0..VALUES {
        let prev = (i + VALUES - 1) % VALUES;
        match i % 6 {
            4 => s.push_str(&format!(
                "    %a{i} = shl %a{i}, %a{prev}\n    %a{i} = add %a{i}, 5\n"
            )),
            5 => s.push_str(&format!(
                "    %a{i} = div %a{prev}, 3\n    %a{i} = add %a{i}, %a{prev}\n"
            )),
            k => {
                let op = ["add", "xor", "sub", "mul"][k];
                s.push_str(&format!("    %a{i} = {op} %a{i}, %a{prev}\n"));
                if k == 3 {
                    s.push_str(&format!("    %a{i} = or %a{i}, 1\n"));
                }
                if k == 2 {
                    // A compare whose flags feed a setcc, not a branch (the
                    // pair is not fused, so a signal can land between them).
                    s.push_str(&format!(
                        "    %t = lt %a{i}, %a{prev}\n    %a{i} = add %a{i}, %t\n"
                    ));
                }
            }
        }
    }
    s.push_str("    %n = add %n, 1\n    %s = load.atomic @stop\n    %c = eq %s, 0\n    br %c, loop, out\nout:\n");
    let holes: Vec<String> = (0..=VALUES).map(|_| "{}".to_string()).collect();
    let regs: Vec<String> = std::iter::once("%n".to_string())
        .chain((0..VALUES).map(|i| format!("%a{i}")))
        .collect();
    s.push_str(&format!(
        "    print \"{}\", {}\n    ret\n}}\n",
        holes.join(" "),
        regs.join(", ")
    ));
    s
}

/// The loop of `program()`, run `n` times in Rust.
pub fn expected(n: u64) -> String {
    let mut a: Vec<i64> = (0..VALUES).map(|i| (i * 7 + 1) as i64).collect();
    for _ in 0..n {
        for i in 0..VALUES {
            let prev = a[(i + VALUES - 1) % VALUES];
            a[i] = match i % 6 {
                0 => a[i].wrapping_add(prev),
                1 => a[i] ^ prev,
                2 => {
                    let x = a[i].wrapping_sub(prev);
                    x.wrapping_add(i64::from(x < prev))
                }
                3 => a[i].wrapping_mul(prev) | 1,
                4 => a[i].wrapping_shl(prev as u32).wrapping_add(5),
                _ => (prev / 3).wrapping_add(prev),
            };
        }
    }
    let mut parts = vec![n.to_string()];
    parts.extend(a.iter().map(i64::to_string));
    parts.join(" ") + "\n"
}
