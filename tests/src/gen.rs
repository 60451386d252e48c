//! Random well-formed PIR programs for differential testing.
//!
//! A program is generated from a seed by a small deterministic generator,
//! so a failing case is reproduced from its seed and printed as text. The
//! programs always terminate: loops are counted with registers the body
//! never writes, calls go only to later functions (the call graph is
//! acyclic) except one recursive function whose depth argument is bounded.
//! They exercise arithmetic with edge values (wrap-around, `MIN / -1`,
//! shifts by 64 and by negative counts), globals (plain and atomic), heap
//! objects (bounds, nil and slot-type faults included), calls and
//! recursion, prints, asserts and panics; every fault is a legitimate
//! outcome both engines must report identically.

use std::fmt::Write;

/// SplitMix64: small, fast, good enough for test generation.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// True with probability `p` percent.
    pub fn chance(&mut self, p: u64) -> bool {
        self.next_u64() % 100 < p
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// Knobs for the generator.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub functions: usize,
    pub statements: usize,
    pub max_depth: usize,
    /// i64 registers per function (register pressure grows with it).
    pub int_vars: usize,
    /// Percent chance that a statement may fault (division by a variable,
    /// unchecked heap index, assert, panic).
    pub fault_rate: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            functions: 4,
            statements: 14,
            max_depth: 3,
            int_vars: 8,
            fault_rate: 6,
        }
    }
}

const EDGE: &[i64] = &[
    0,
    1,
    -1,
    2,
    7,
    63,
    64,
    -64,
    255,
    1 << 31,
    -(1 << 31),
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
    i64::MIN + 1,
    0x5555_5555_5555_5555,
];

struct Func {
    name: String,
    params: usize,
    returns: bool,
}

struct Gen<'a> {
    rng: Rng,
    shape: Shape,
    out: String,
    funcs: &'a [Func],
    me: usize,
    labels: usize,
    loops: usize,
    /// Loops around the current statement (calls stay out of loops, so
    /// the work of a program stays small).
    in_loop: usize,
    ints: usize,
}

impl Gen<'_> {
    fn label(&mut self, what: &str) -> String {
        self.labels += 1;
        format!("{what}{}", self.labels)
    }

    fn int(&mut self) -> String {
        format!("%v{}", self.rng.below(self.ints))
    }

    fn literal(&mut self) -> i64 {
        if self.rng.chance(50) {
            *self.rng.pick(EDGE)
        } else {
            self.rng.below(41) as i64 - 20
        }
    }

    fn operand(&mut self) -> String {
        if self.rng.chance(70) {
            self.int()
        } else {
            self.literal().to_string()
        }
    }

    fn line(&mut self, s: &str) {
        self.out.push_str("    ");
        self.out.push_str(s);
        self.out.push('\n');
    }

    fn statement(&mut self, depth: usize) {
        let faults = self.shape.fault_rate;
        let d = self.int();
        match self.rng.below(24) {
            0..=5 => {
                let op = *self.rng.pick(&[
                    "add", "sub", "mul", "and", "or", "xor", "shl", "shr", "sar", "eq", "ne", "lt",
                    "le", "gt", "ge",
                ]);
                let (a, b) = (self.operand(), self.operand());
                self.line(&format!("{d} = {op} {a}, {b}"));
            }
            6 => {
                let op = *self.rng.pick(&["neg", "not", "copy"]);
                let a = self.operand();
                self.line(&format!("{d} = {op} {a}"));
            }
            7 => {
                // Division: by a non-zero literal (MIN / -1 included), or by
                // a variable when faults are welcome.
                let op = *self.rng.pick(&["div", "rem"]);
                let a = self.operand();
                let b = if self.rng.chance(faults * 4) {
                    // Zero about half the time.
                    let v = self.int();
                    self.line(&format!("%t = and {v}, 1"));
                    "%t".to_string()
                } else {
                    let v = *self.rng.pick(&[-1i64, 1, 2, 3, 7, -7, i64::MAX, i64::MIN]);
                    v.to_string()
                };
                self.line(&format!("{d} = {op} {a}, {b}"));
            }
            8 => {
                let g = *self.rng.pick(&["@g0", "@g1", "@g2"]);
                self.line(&format!("{d} = load {g}"));
            }
            9 => {
                let g = *self.rng.pick(&["@g0", "@g1", "@g2"]);
                let a = self.operand();
                self.line(&format!("store {g}, {a}"));
            }
            10 => {
                let a = self.operand();
                match self.rng.below(4) {
                    0 => self.line(&format!("{d} = load.atomic @g1")),
                    1 => self.line(&format!("store.atomic @g1, {a}")),
                    2 => self.line(&format!("{d} = add.atomic @g2, {a}")),
                    _ => {
                        let b = self.operand();
                        self.line(&format!("{d} = cas.atomic @g0, {a}, {b}"))
                    }
                }
            }
            11 => {
                // A fresh object into one of the ref registers.
                let r = self.rng.below(2);
                let size = if self.rng.chance(faults) {
                    "-1".to_string()
                } else {
                    self.rng.below(5).to_string()
                };
                self.line(&format!("%o{r} = new {size}"));
            }
            12 | 13 => {
                let r = self.rng.below(2);
                let idx = self.index();
                let a = self.operand();
                self.line(&format!("set %o{r}, {idx}, {a}"));
            }
            14 => {
                let r = self.rng.below(2);
                let idx = self.index();
                self.line(&format!("{d} = get %o{r}, {idx}"));
            }
            15 => {
                let (r, s) = (self.rng.below(2), self.rng.below(2));
                let idx = self.index();
                if self.rng.chance(50) {
                    self.line(&format!("setref %o{r}, {idx}, %o{s}"));
                } else {
                    self.line(&format!("%o{s} = getref %o{r}, {idx}"));
                }
            }
            16 => {
                let r = self.rng.below(2);
                self.line(&format!("{d} = len %o{r}"));
            }
            17 => {
                let (a, b) = (self.int(), self.int());
                self.line(&format!("print \"{a}={{}} {b}={{}}\", {a}, {b}"));
            }
            18 if depth < self.shape.max_depth => self.if_else(depth),
            19 if depth < self.shape.max_depth => self.counted_loop(depth),
            20 => self.call(&d),
            21 if self.rng.chance(faults * 3) => {
                let a = self.int();
                self.line(&format!("assert {a}, \"{a} is not zero\""));
            }
            22 if self.rng.chance(faults) => {
                // A panic on a data-dependent path.
                let then = self.label("boom");
                let join = self.label("fine");
                let c = self.int();
                self.line(&format!("%t = gt {c}, 100"));
                self.line(&format!("br %t, {then}, {join}"));
                self.out.push_str(&format!("{then}:\n"));
                self.line(&format!("panic \"{c} is over 100\""));
                self.out.push_str(&format!("{join}:\n"));
            }
            _ => {
                let a = self.operand();
                self.line(&format!("{d} = add {d}, {a}"));
            }
        }
    }

    /// A slot index: mostly in range of a small object, sometimes not.
    fn index(&mut self) -> String {
        if self.rng.chance(self.shape.fault_rate * 2) {
            self.operand()
        } else {
            self.rng.below(3).to_string()
        }
    }

    fn block(&mut self, depth: usize, n: usize) {
        for _ in 0..n {
            self.statement(depth);
        }
    }

    fn if_else(&mut self, depth: usize) {
        let (then, other, join) = (self.label("then"), self.label("else"), self.label("join"));
        let c = self.int();
        self.line(&format!("br {c}, {then}, {other}"));
        self.out.push_str(&format!("{then}:\n"));
        let n = 1 + self.rng.below(4);
        self.block(depth + 1, n);
        self.line(&format!("jmp {join}"));
        self.out.push_str(&format!("{other}:\n"));
        let n = self.rng.below(4);
        self.block(depth + 1, n);
        // Fall through into the join block.
        self.out.push_str(&format!("{join}:\n"));
    }

    fn counted_loop(&mut self, depth: usize) {
        let k = self.loops;
        self.loops += 1;
        let (head, exit) = (self.label("loop"), self.label("done"));
        let trips = 1 + self.rng.below(8);
        self.line(&format!("%k{k} = const 0"));
        self.out.push_str(&format!("{head}:\n"));
        let n = 1 + self.rng.below(5);
        self.in_loop += 1;
        self.block(depth + 1, n);
        self.in_loop -= 1;
        self.line(&format!("%k{k} = add %k{k}, 1"));
        self.line(&format!("%kc{k} = lt %k{k}, {trips}"));
        self.line(&format!("br %kc{k}, {head}, {exit}"));
        self.out.push_str(&format!("{exit}:\n"));
    }

    fn call(&mut self, d: &str) {
        let later: Vec<usize> = (self.me + 1..self.funcs.len()).collect();
        if later.is_empty() || self.in_loop > 0 {
            let a = self.operand();
            self.line(&format!("{d} = xor {d}, {a}"));
            return;
        }
        let callee = *self.rng.pick(&later);
        let f = &self.funcs[callee];
        let (name, params, returns) = (f.name.clone(), f.params, f.returns);
        let args: Vec<String> = (0..params)
            .map(|i| {
                if i == 0 && name == "rec" {
                    self.depth_arg()
                } else {
                    self.operand()
                }
            })
            .collect();
        let call = format!("call @{name}({})", args.join(", "));
        if returns {
            self.line(&format!("{d} = {call}"));
        } else {
            self.line(&call);
        }
    }

    fn depth_arg(&mut self) -> String {
        (self.rng.below(12) as i64).to_string()
    }
}

/// A random program for `seed`.
pub fn program(seed: u64, shape: Shape) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    for g in 0..3 {
        let init = if rng.chance(50) {
            *rng.pick(EDGE)
        } else {
            rng.below(100) as i64
        };
        writeln!(out, "global @g{g}: i64 = {init}").unwrap();
    }
    out.push_str("global @keep: ref\n\n");
    // @main first, then helpers; the last helper is the recursive one.
    let mut funcs = vec![Func {
        name: "main".into(),
        params: 0,
        returns: false,
    }];
    for i in 1..shape.functions {
        funcs.push(Func {
            name: format!("f{i}"),
            params: 1 + rng.below(3),
            returns: rng.chance(80),
        });
    }
    funcs.push(Func {
        name: "rec".into(),
        params: 2,
        returns: true,
    });
    for me in 0..funcs.len() {
        let f = &funcs[me];
        let params: Vec<String> = (0..f.params).map(|i| format!("%p{i}: i64")).collect();
        let ret = if f.returns { " -> i64" } else { "" };
        writeln!(out, "func @{}({}){ret} {{", f.name, params.join(", ")).unwrap();
        if f.name == "rec" {
            // Bounded recursion: depth %p0 (0..12) counts down.
            out.push_str(
                "    %z = le %p0, 0\n    br %z, base, step\nbase:\n    %b = load @g0\n    %b = add %b, %p1\n    ret %b\nstep:\n    %d = sub %p0, 1\n    %m = mul %p1, 3\n    %m = add %m, %p0\n    %r = call @rec(%d, %m)\n    %r = xor %r, %p1\n    store @g2, %r\n    ret %r\n}\n\n",
            );
            continue;
        }
        let mut g = Gen {
            rng: Rng::new(rng.next_u64()),
            shape,
            out: String::new(),
            funcs: &funcs,
            me,
            labels: 0,
            loops: 0,
            in_loop: 0,
            ints: shape.int_vars,
        };
        for v in 0..shape.int_vars {
            let init = if v < f.params {
                format!("copy %p{v}")
            } else {
                format!("const {}", g.literal())
            };
            g.line(&format!("%v{v} = {init}"));
        }
        g.line("%o0 = new 3");
        g.line("%o1 = copy nil");
        g.line("%t = const 0");
        g.block(0, shape.statements);
        g.line("%sum = add %v0, %v1");
        g.line("print \"end {}\", %sum");
        g.line("store @keep, %o0");
        if f.returns {
            g.line("ret %sum");
        } else {
            g.line("ret");
        }
        out.push_str(&g.out);
        out.push_str("}\n\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_programs_parse_and_verify() {
        for seed in 0..200 {
            let text = program(seed, Shape::default());
            let mut p = preempt_jit::ir::parse(&text)
                .unwrap_or_else(|e| panic!("{}\n{text}", e.render("gen", &text)));
            preempt_jit::ir::verify(&mut p)
                .unwrap_or_else(|e| panic!("{}\n{text}", e.render("gen", &text)));
        }
    }
}
