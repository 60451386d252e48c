//! Instructions and terminators: the mnemonic, then the operands its
//! format wants.

use super::{FuncState, Parser};
use crate::ir::lexer::Tok;
use crate::ir::{
    ArmKind, Error, ForeignFn, Format, Inst, InstKind, Opcode, SelectArm, TermKind, Terminator,
};

impl<'a> Parser<'a> {
    pub(super) fn instruction(&mut self, st: &mut FuncState<'a>) -> Result<(), Error> {
        let span = self.span();
        let dst = if let Tok::Reg(name) = *self.peek() {
            self.bump();
            self.expect(Tok::Eq, "'='")?;
            Some(st.reg(name))
        } else {
            None
        };
        let (mnemonic, m_span) = self.expect_ident("an instruction")?;
        let Some(op) = Opcode::from_mnemonic(mnemonic) else {
            return Err(Error::new(
                m_span,
                format!("unknown instruction '{mnemonic}'"),
            ));
        };
        let format = op.format();
        let has_result = matches!(
            format,
            Format::Const
                | Format::Unary
                | Format::Binary
                | Format::Nullary
                | Format::Load
                | Format::AtomicAdd
                | Format::Cas
        );
        match (dst, has_result) {
            (None, true) => {
                return Err(Error::new(
                    m_span,
                    format!("'{mnemonic}' produces a value: write '%x = {mnemonic} ...'"),
                ))
            }
            (Some(_), false) if format != Format::Call => {
                return Err(Error::new(
                    span,
                    format!("'{mnemonic}' produces no value and cannot be assigned to a register"),
                ))
            }
            _ => {}
        }
        let inst = |kind| Inst::new(kind, span);
        let kind = match format {
            Format::Const => {
                let v_span = self.span();
                let value = match self.bump().tok {
                    Tok::Int(v) => v,
                    other => {
                        return Err(Error::new(
                            v_span,
                            format!(
                                "'const' takes an integer literal, found {}",
                                other.describe()
                            ),
                        ))
                    }
                };
                InstKind::Const {
                    dst: dst.expect("checked"),
                    value,
                }
            }
            Format::Unary => InstKind::Unary {
                op,
                dst: dst.expect("checked"),
                arg: self.operand(st)?,
            },
            Format::Binary => {
                let a = self.operand(st)?;
                self.comma()?;
                let b = self.operand(st)?;
                InstKind::Binary {
                    op,
                    dst: dst.expect("checked"),
                    args: [a, b],
                }
            }
            Format::Nullary => InstKind::Nullary {
                op,
                dst: dst.expect("checked"),
            },
            Format::Effect => {
                let n = op.operand_types().len();
                let mut args = Vec::with_capacity(n);
                for i in 0..n {
                    if i > 0 {
                        self.comma()?;
                    }
                    args.push(self.operand(st)?);
                }
                InstKind::Effect { op, args }
            }
            Format::Load => InstKind::Load {
                op,
                dst: dst.expect("checked"),
                global: self.global_ref()?,
            },
            Format::Store => {
                let global = self.global_ref()?;
                self.comma()?;
                InstKind::Store {
                    op,
                    global,
                    value: self.operand(st)?,
                }
            }
            Format::AtomicAdd => {
                let global = self.global_ref()?;
                self.comma()?;
                InstKind::AtomicAdd {
                    dst: dst.expect("checked"),
                    global,
                    value: self.operand(st)?,
                }
            }
            Format::Cas => {
                let global = self.global_ref()?;
                self.comma()?;
                let old = self.operand(st)?;
                self.comma()?;
                InstKind::Cas {
                    dst: dst.expect("checked"),
                    global,
                    old,
                    new: self.operand(st)?,
                }
            }
            Format::Call => {
                let func = self.func_ref()?;
                InstKind::Call {
                    dst,
                    func,
                    args: self.call_args(st)?,
                }
            }
            Format::Spawn => {
                let func = self.func_ref()?;
                InstKind::Spawn {
                    func,
                    args: self.call_args(st)?,
                }
            }
            Format::Print => {
                let format = self.string()?;
                let mut args = Vec::new();
                while matches!(self.peek(), Tok::Comma) {
                    self.bump();
                    args.push(self.operand(st)?);
                }
                InstKind::Print { format, args }
            }
            Format::Assert => {
                let cond = self.operand(st)?;
                self.comma()?;
                InstKind::Assert {
                    cond,
                    message: self.string()?,
                }
            }
            Format::CCall => {
                let (name, n_span) = self.expect_ident("a foreign function name")?;
                let Some(func) = ForeignFn::from_name(name) else {
                    let known: Vec<_> = ForeignFn::ALL.iter().map(|f| f.name()).collect();
                    return Err(Error::new(
                        n_span,
                        format!(
                            "unknown foreign function '{name}' (known: {})",
                            known.join(", ")
                        ),
                    ));
                };
                let arg = if func.takes_arg() {
                    if !matches!(self.peek(), Tok::Comma) {
                        return Err(Error::new(
                            self.span(),
                            format!("'ccall {name}' takes a duration in microseconds: 'ccall {name}, X'"),
                        ));
                    }
                    self.bump();
                    Some(self.operand(st)?)
                } else {
                    None
                };
                InstKind::CCall { func, arg }
            }
            Format::Jmp
            | Format::Br
            | Format::Ret
            | Format::Goexit
            | Format::Panic
            | Format::Select => {
                let kind = self.terminator(op, st)?;
                st.terminate(Terminator { kind, span });
                return Ok(());
            }
        };
        st.push(inst(kind));
        Ok(())
    }

    fn terminator(&mut self, op: Opcode, st: &mut FuncState<'a>) -> Result<TermKind, Error> {
        Ok(match op.format() {
            Format::Jmp => TermKind::Jmp {
                target: self.label(st)?,
            },
            Format::Br => {
                let cond = self.operand(st)?;
                self.comma()?;
                let then_ = self.label(st)?;
                self.comma()?;
                let else_ = self.label(st)?;
                TermKind::Br { cond, then_, else_ }
            }
            Format::Ret => {
                let value = if matches!(self.peek(), Tok::Newline | Tok::Eof) {
                    None
                } else {
                    Some(self.operand(st)?)
                };
                TermKind::Ret { value }
            }
            Format::Goexit => TermKind::Goexit,
            Format::Panic => TermKind::Panic {
                message: self.string()?,
            },
            Format::Select => {
                let mut arms = Vec::new();
                loop {
                    arms.push(self.select_arm(st)?);
                    if matches!(self.peek(), Tok::Comma) {
                        self.bump();
                        continue;
                    }
                    break;
                }
                TermKind::Select { arms }
            }
            _ => unreachable!("not a terminator format"),
        })
    }

    fn select_arm(&mut self, st: &mut FuncState<'a>) -> Result<SelectArm, Error> {
        let (kw, span) = self.expect_ident("a select arm ('recv', 'send' or 'default')")?;
        let kind = match kw {
            "recv" => {
                let chan = self.operand(st)?;
                let into = if matches!(self.peek(), Tok::Ident("into")) {
                    self.bump();
                    let r_span = self.span();
                    match self.bump().tok {
                        Tok::Reg(name) => Some(st.reg(name)),
                        other => {
                            return Err(Error::new(
                                r_span,
                                format!(
                                    "expected a register after 'into', found {}",
                                    other.describe()
                                ),
                            ))
                        }
                    }
                } else {
                    None
                };
                ArmKind::Recv { chan, into }
            }
            "send" => {
                let chan = self.operand(st)?;
                self.comma()?;
                ArmKind::Send {
                    chan,
                    value: self.operand(st)?,
                }
            }
            "default" => ArmKind::Default,
            other => {
                return Err(Error::new(
                    span,
                    format!("unknown select arm '{other}' (arms are 'recv', 'send' and 'default')"),
                ))
            }
        };
        self.expect(Tok::Arrow, "'->' and a label")?;
        let target = self.label(st)?;
        Ok(SelectArm { kind, target, span })
    }
}
