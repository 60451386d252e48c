//! The PIR parser: tokens to a [`Program`] with every name resolved.
//!
//! The parser checks syntax and names: it resolves functions, globals,
//! labels and registers to typed indices and rejects what is undefined or
//! defined twice. Types, definite assignment and the other semantic rules
//! are the verifier's. The first error in the text is the one reported.

use std::collections::HashMap as StdHashMap;
use std::hash::{BuildHasherDefault, Hasher};

mod fast;
mod instruction;
mod pieces;
mod prescan;
mod regs;

use regs::RegIds;

use super::lexer::{unescape, Lexer, Tok, Token};
use super::{
    Block, BlockId, Error, FuncId, Function, Global, GlobalId, Inst, Operand, PreemptMode, Program,
    Reg, RegInfo, Span, Terminator, Type,
};
use crate::par::Threads;

/// The multiply-rotate hash rustc uses for its own tables (FxHash): names
/// are short and not adversarial, and SipHash would dominate parsing.
#[derive(Default)]
struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes at a time, the tail zero-padded, without a call to
        // copy a short chunk.
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let word = tail
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        // A product's low bits depend only on the low bits of its factors,
        // so unrotated, names that share their first characters (`%r1`,
        // `%r10`, `%r100`, ...) would share the low bits the table picks
        // its bucket with: a function of 100,000 registers parsed in
        // quadratic time. The high bits depend on every byte.
        self.0.rotate_left(26)
    }
}

type HashMap<K, V> = StdHashMap<K, V, BuildHasherDefault<NameHasher>>;

/// Parses PIR source bytes, which must be UTF-8.
pub fn parse_bytes(bytes: &[u8]) -> Result<Program, Error> {
    match std::str::from_utf8(bytes) {
        Ok(s) => parse(s),
        Err(e) => {
            let prefix = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default();
            let line = prefix.matches('\n').count() + 1;
            let col = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(Error::new(
                Span::new(line as u32, col as u32),
                format!("invalid UTF-8 (byte 0x{:02x})", bytes[e.valid_up_to()]),
            ))
        }
    }
}

/// Parses PIR source text.
///
/// Tokens are pulled from the lexer as the parser goes. A lexical error
/// anywhere in the text is the error reported, even when a syntax error
/// comes before it, as when the whole text was lexed first.
pub fn parse(source: &str) -> Result<Program, Error> {
    parse_with(source, Threads::Auto)
}

/// [`parse`] on up to `threads` threads: the same program, or the same
/// error, whatever their number.
pub fn parse_with(source: &str, threads: Threads) -> Result<Program, Error> {
    let mut p = Parser::new(source);
    let funcs = p.prescan(source, threads);
    if let Some(prog) = pieces::parse_in_pieces(&p, source, &funcs, threads) {
        return Ok(prog);
    }
    p.whole()
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The current token and the one after it.
    cur: Token<'a>,
    ahead: Token<'a>,
    /// The first lexical error, met while reading ahead; the token stream
    /// ends there.
    lex_error: Option<Error>,
    func_ids: HashMap<&'a str, (FuncId, Span)>,
    global_ids: HashMap<&'a str, (GlobalId, Span)>,
    n_funcs: usize,
    n_globals: usize,
    /// Per-function tables, kept between functions for their capacity.
    tables: Tables<'a>,
    /// Whether instruction lines may take the fast path ([`fast`]); off
    /// only in its tests, to compare with the general path.
    fast: bool,
    /// Lines the fast path took (for its tests).
    fast_lines: usize,
}

/// The tables of the function being parsed, empty between functions.
#[derive(Default)]
struct Tables<'a> {
    reg_ids: RegIds<'a>,
    /// The function's registers, moved out in one allocation of the right
    /// size when it is complete (growing the function's own vector by
    /// doubling copied it over and over).
    regs: Vec<RegInfo>,
    labels: HashMap<&'a str, (BlockId, Span)>,
    label_refs: Vec<LabelRef<'a>>,
    /// The instructions of the last block, moved into it (in one
    /// allocation of the right size) when the block is complete.
    insts: Vec<Inst>,
}

impl Tables<'_> {
    fn clear(&mut self) {
        self.reg_ids.clear();
        self.regs.clear();
        self.labels.clear();
        self.label_refs.clear();
        self.insts.clear();
    }
}

/// A label reference waiting for the end of its function.
struct LabelRef<'a> {
    name: &'a str,
    span: Span,
}

/// Per-function parsing state.
struct FuncState<'a> {
    blocks: Vec<Block>,
    /// The parser's tables, lent for the function.
    t: Tables<'a>,
}

impl<'a> FuncState<'a> {
    fn reg(&mut self, name: &'a str) -> Reg {
        let next = Reg::new(self.t.regs.len());
        let (r, new) = self.t.reg_ids.get_or_insert(name, next);
        if new {
            self.t.regs.push(RegInfo {
                name: name.into(),
                ty: None,
            });
        }
        r
    }

    /// A placeholder block id standing for label reference `i`, resolved at
    /// the end of the function.
    fn label_ref(&mut self, name: &'a str, span: Span) -> BlockId {
        self.t.label_refs.push(LabelRef { name, span });
        BlockId::new(self.t.label_refs.len() - 1)
    }

    /// Gives the pending instructions to the last block.
    fn close_block(&mut self) {
        if let Some(last) = self.blocks.last_mut() {
            if !self.t.insts.is_empty() {
                last.insts.append(&mut self.t.insts);
            }
        }
    }

    /// Opens a block (closing the one before).
    fn open_block(&mut self, label: Option<String>, span: Span) {
        self.close_block();
        self.blocks.push(Block {
            label,
            span,
            insts: Vec::new(),
            term: None,
        });
    }

    /// Opens an unlabelled block when instructions follow a terminator or
    /// start the body.
    fn ensure_open(&mut self, span: Span) {
        if self.blocks.last().is_none_or(|b| b.term.is_some()) {
            self.open_block(None, span);
        }
    }

    fn push(&mut self, inst: Inst) {
        self.ensure_open(inst.span);
        self.t.insts.push(inst);
    }

    fn terminate(&mut self, term: Terminator) {
        self.ensure_open(term.span);
        self.close_block();
        self.blocks.last_mut().expect("just opened").term = Some(term);
    }
}

impl<'a> Parser<'a> {
    fn new(source: &'a str) -> Parser<'a> {
        Parser::with_lexer(
            Lexer::new(source),
            source,
            HashMap::default(),
            HashMap::default(),
        )
    }

    /// A parser reading from `lexer`, names borrowing from `source`, with
    /// the program's functions and globals as a prescan found them.
    fn with_lexer(
        lexer: Lexer<'a>,
        source: &'a str,
        func_ids: HashMap<&'a str, (FuncId, Span)>,
        global_ids: HashMap<&'a str, (GlobalId, Span)>,
    ) -> Parser<'a> {
        let placeholder = || Token {
            tok: Tok::Eof,
            span: Span::new(1, 1),
        };
        let mut p = Parser {
            lexer,
            cur: placeholder(),
            ahead: placeholder(),
            lex_error: None,
            n_funcs: func_ids.len(),
            n_globals: global_ids.len(),
            func_ids,
            global_ids,
            tables: Tables {
                reg_ids: RegIds::new(source),
                ..Tables::default()
            },
            fast: true,
            fast_lines: 0,
        };
        p.cur = p.pull();
        p.ahead = p.pull();
        p
    }

    /// The program, read from the whole text on this thread: the
    /// program, or the first error (a lexical error anywhere winning).
    fn whole(mut self) -> Result<Program, Error> {
        let result = self.program(false);
        if let Some(e) = self.lex_error.take() {
            return Err(e);
        }
        if result.is_err() {
            // A lexical error further on still wins.
            loop {
                match self.lexer.next_token() {
                    Ok(Token { tok: Tok::Eof, .. }) => break,
                    Ok(_) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        result
    }

    /// The lexer's next token; after a lexical error, end of file there.
    fn pull(&mut self) -> Token<'a> {
        if self.lex_error.is_some() {
            return self.ahead;
        }
        match self.lexer.next_token() {
            Ok(t) => t,
            Err(e) => {
                let span = e.span;
                self.lex_error = Some(e);
                Token {
                    tok: Tok::Eof,
                    span,
                }
            }
        }
    }

    fn peek(&self) -> &Tok<'a> {
        &self.cur.tok
    }

    /// The token after the current one.
    fn peek_second(&self) -> &Tok<'a> {
        &self.ahead.tok
    }

    fn span(&self) -> Span {
        self.cur.span
    }

    fn bump(&mut self) -> Token<'a> {
        let taken = self.cur;
        if !matches!(taken.tok, Tok::Eof) {
            self.cur = self.ahead;
            self.ahead = self.pull();
        }
        taken
    }

    fn unexpected(&self, expected: &str) -> Error {
        Error::new(
            self.span(),
            format!("expected {expected}, found {}", self.peek().describe()),
        )
    }

    /// Takes punctuation `tok` (a token without a payload, so comparing
    /// the kinds compares the tokens).
    fn expect(&mut self, tok: Tok<'a>, expected: &str) -> Result<Span, Error> {
        if std::mem::discriminant(self.peek()) == std::mem::discriminant(&tok) {
            Ok(self.bump().span)
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn expect_ident(&mut self, expected: &str) -> Result<(&'a str, Span), Error> {
        match *self.peek() {
            Tok::Ident(name) => Ok((name, self.bump().span)),
            _ => Err(self.unexpected(expected)),
        }
    }

    fn expect_line_end(&mut self) -> Result<(), Error> {
        match self.peek() {
            Tok::Newline => {
                self.bump();
                Ok(())
            }
            Tok::Eof => Ok(()),
            _ => Err(self.unexpected("end of line")),
        }
    }

    fn skip_blank_lines(&mut self) {
        while matches!(self.peek(), Tok::Newline) {
            self.bump();
        }
    }

    /// The top-level items up to the end of the text; `past_header` when
    /// the text is a piece after the first, where `set` lines may not
    /// stand.
    fn program(&mut self, mut past_header: bool) -> Result<Program, Error> {
        let mut prog = Program::default();
        let mut seen_settings: HashMap<&'a str, Span> = HashMap::default();
        loop {
            self.skip_blank_lines();
            let span = self.span();
            match *self.peek() {
                Tok::Eof => break,
                Tok::Ident("set") => {
                    if past_header {
                        return Err(Error::new(
                            span,
                            "'set' lines come before every global and function",
                        ));
                    }
                    self.setting(&mut prog, &mut seen_settings)?;
                }
                Tok::Ident("global") => {
                    past_header = true;
                    let g = self.global()?;
                    prog.globals.push(g);
                }
                Tok::Ident("func") => {
                    past_header = true;
                    let f = self.function()?;
                    prog.funcs.push(f);
                }
                _ => return Err(self.unexpected("'set', 'global' or 'func'")),
            }
        }
        Ok(prog)
    }

    fn setting(
        &mut self,
        prog: &mut Program,
        seen: &mut HashMap<&'a str, Span>,
    ) -> Result<(), Error> {
        self.bump();
        let (key, key_span) = self.expect_ident("a setting name")?;
        if let Some(first) = seen.get(key) {
            return Err(Error::new(
                key_span,
                format!("setting '{key}' given twice (first at {first})"),
            ));
        }
        self.expect(Tok::Eq, "'='")?;
        let value_span = self.span();
        let value = self.bump().tok;
        let int = |what: &str, ok: &dyn Fn(i64) -> bool| -> Result<i64, Error> {
            match value {
                Tok::Int(v) if ok(v) => Ok(v),
                Tok::Int(v) => Err(Error::new(
                    value_span,
                    format!("'{key}' must be {what}, not {v}"),
                )),
                ref other => Err(Error::new(
                    value_span,
                    format!("'{key}' must be {what}, found {}", other.describe()),
                )),
            }
        };
        match key {
            "procs" => {
                prog.settings.procs = Some(int("an integer from 1 to 1024", &|v| {
                    (1..=1024).contains(&v)
                })?)
            }
            "gc_percent" => {
                prog.settings.gc_percent =
                    Some(int("an integer (negative turns the GC off)", &|_| true)?)
            }
            "opt" => prog.settings.opt = Some(int("0 or 1", &|v| v == 0 || v == 1)?),
            "nosplit_leaves" => {
                prog.settings.nosplit_leaves = Some(int("0 or 1", &|v| v == 0 || v == 1)?)
            }
            "quantum_us" => {
                prog.settings.quantum_us =
                    Some(int("a positive number of microseconds", &|v| v > 0)?)
            }
            "preempt" => {
                let mode = match &value {
                    Tok::Ident(name) => PreemptMode::from_name(name),
                    _ => None,
                };
                prog.settings.preempt = Some(mode.ok_or_else(|| {
                    Error::new(
                        value_span,
                        format!(
                            "'preempt' must be one of async, coop, poll, trap, patch; found {}",
                            value.describe()
                        ),
                    )
                })?);
            }
            _ => {
                return Err(Error::new(
                    key_span,
                    format!(
                        "unknown setting '{key}' (known: {})",
                        super::Settings::KEYS.join(", ")
                    ),
                ))
            }
        }
        seen.insert(key, key_span);
        self.expect_line_end()
    }

    fn parse_type(&mut self) -> Result<(Type, Span), Error> {
        let span = self.span();
        match *self.peek() {
            Tok::Ident(name) => match Type::from_name(name) {
                Some(t) => {
                    self.bump();
                    Ok((t, span))
                }
                None => Err(Error::new(
                    span,
                    format!("unknown type '{name}' (types are i64, ref and chan)"),
                )),
            },
            _ => Err(self.unexpected("a type (i64, ref or chan)")),
        }
    }

    /// Checks that a definition at `span` is the first of its name.
    fn check_first_definition(&self, name: &str, span: Span, is_func: bool) -> Result<(), Error> {
        let first = if is_func {
            self.func_ids.get(name).map(|x| x.1)
        } else {
            self.global_ids.get(name).map(|x| x.1)
        };
        let other = if is_func {
            self.global_ids.get(name).map(|x| ("global", x.1))
        } else {
            self.func_ids.get(name).map(|x| ("function", x.1))
        };
        if let Some((kind, at)) = other {
            if at.key() < span.key() || first.is_none() {
                return Err(Error::new(
                    span,
                    format!("@{name} is already defined as a {kind} at {at}"),
                ));
            }
        }
        match first {
            Some(at) if at.key() == span.key() => Ok(()),
            Some(at) => {
                let kind = if is_func { "function" } else { "global" };
                Err(Error::new(
                    span,
                    format!("duplicate {kind} @{name} (first defined at {at})"),
                ))
            }
            None => Err(Error::new(span, format!("@{name} is already defined"))),
        }
    }

    fn global(&mut self) -> Result<Global, Error> {
        self.bump();
        let span = self.span();
        let name = match self.bump().tok {
            Tok::Global(n) => n,
            other => {
                return Err(Error::new(
                    span,
                    format!("expected a global name '@name', found {}", other.describe()),
                ))
            }
        };
        self.check_first_definition(name, span, false)?;
        self.expect(Tok::Colon, "':' and a type")?;
        let (ty, ty_span) = self.parse_type()?;
        if ty == Type::Chan {
            return Err(Error::new(ty_span, "globals are i64 or ref, not chan"));
        }
        let mut init = 0;
        let mut has_init = false;
        if matches!(self.peek(), Tok::Eq) {
            let eq_span = self.bump().span;
            if ty == Type::Ref {
                return Err(Error::new(
                    eq_span,
                    "a ref global starts nil and takes no initialiser",
                ));
            }
            let v_span = self.span();
            match self.bump().tok {
                Tok::Int(v) => init = v,
                other => {
                    return Err(Error::new(
                        v_span,
                        format!(
                            "expected an integer initialiser, found {}",
                            other.describe()
                        ),
                    ))
                }
            }
            has_init = true;
        }
        self.expect_line_end()?;
        Ok(Global {
            name: name.to_string(),
            ty,
            init,
            has_init,
            span,
        })
    }

    fn function(&mut self) -> Result<Function, Error> {
        self.bump();
        let span = self.span();
        let name = match self.bump().tok {
            Tok::Global(n) => n,
            other => {
                return Err(Error::new(
                    span,
                    format!(
                        "expected a function name '@name', found {}",
                        other.describe()
                    ),
                ))
            }
        };
        self.check_first_definition(name, span, true)?;
        let mut st = FuncState {
            blocks: Vec::new(),
            t: std::mem::take(&mut self.tables),
        };
        self.expect(Tok::LParen, "'('")?;
        let mut params = Vec::new();
        let mut param_types = Vec::new();
        if !matches!(self.peek(), Tok::RParen) {
            loop {
                let p_span = self.span();
                let p_name = match self.bump().tok {
                    Tok::Reg(n) => n,
                    other => {
                        return Err(Error::new(
                            p_span,
                            format!(
                                "expected a parameter '%name: type', found {}",
                                other.describe()
                            ),
                        ))
                    }
                };
                if st.t.reg_ids.contains(p_name) {
                    return Err(Error::new(p_span, format!("duplicate parameter %{p_name}")));
                }
                self.expect(Tok::Colon, "':' and a type")?;
                let (ty, _) = self.parse_type()?;
                let r = st.reg(p_name);
                st.t.regs[r.index()].ty = Some(ty);
                params.push(r);
                param_types.push(ty);
                if matches!(self.peek(), Tok::Comma) {
                    self.bump();
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen, "')' or ','")?;
        let mut ret = None;
        if matches!(self.peek(), Tok::Arrow) {
            self.bump();
            ret = Some(self.parse_type()?.0);
        }
        self.expect(Tok::LBrace, "'{'")?;
        self.expect_line_end()?;
        let end = loop {
            let line_span = self.span();
            let first = *self.peek();
            match first {
                Tok::Newline => {
                    self.bump();
                }
                Tok::RBrace => {
                    self.bump();
                    self.expect_line_end()?;
                    break line_span;
                }
                Tok::Eof => {
                    return Err(Error::new(
                        line_span,
                        format!("missing '}}' to close function @{name} (opened at {span})"),
                    ))
                }
                Tok::Ident(kw)
                    if (kw == "func" || kw == "global")
                        && matches!(self.peek_second(), Tok::Global(_)) =>
                {
                    return Err(Error::new(
                        line_span,
                        format!("missing '}}' to close function @{name} (opened at {span})"),
                    ))
                }
                Tok::Ident(label) if matches!(self.peek_second(), Tok::Colon) => {
                    self.bump();
                    self.bump();
                    if !matches!(self.peek(), Tok::Newline | Tok::Eof) {
                        return Err(Error::new(
                            self.span(),
                            format!("a label stands on its own line; put what follows '{label}:' on the next line"),
                        ));
                    }
                    if let Some((_, first)) = st.t.labels.get(&label) {
                        return Err(Error::new(
                            line_span,
                            format!("duplicate label '{label}' (first at {first})"),
                        ));
                    }
                    st.open_block(Some(label.to_string()), line_span);
                    st.t.labels
                        .insert(label, (BlockId::new(st.blocks.len() - 1), line_span));
                    self.expect_line_end()?;
                }
                Tok::Reg(_) if self.fast_instruction(&mut st) => {}
                Tok::Ident(_) if self.fast_effect(&mut st) => {}
                _ => {
                    self.instruction(&mut st)?;
                    self.expect_line_end()?;
                }
            }
        };
        st.close_block();
        // Resolve label references.
        let mut resolved = Vec::with_capacity(st.t.label_refs.len());
        for r in &st.t.label_refs {
            match st.t.labels.get(&r.name) {
                Some(&(b, _)) => resolved.push(b),
                None => return Err(Error::new(r.span, format!("undefined label '{}'", r.name))),
            }
        }
        for block in &mut st.blocks {
            if let Some(term) = &mut block.term {
                term.kind
                    .for_each_successor_mut(|b| *b = resolved[b.index()]);
            }
        }
        let regs = st.t.regs.drain(..).collect();
        st.t.clear();
        self.tables = st.t;
        Ok(Function {
            name: name.to_string(),
            span,
            end,
            params,
            param_types,
            ret,
            regs,
            blocks: st.blocks,
            cfg: Default::default(),
        })
    }

    fn operand(&mut self, st: &mut FuncState<'a>) -> Result<Operand, Error> {
        match fast::raw(*self.peek()) {
            Some(raw) => {
                self.bump();
                Ok(st.operand(raw))
            }
            None => Err(Error::new(
                self.span(),
                format!(
                    "expected an operand (register, integer or nil), found {}",
                    self.peek().describe()
                ),
            )),
        }
    }

    fn comma(&mut self) -> Result<(), Error> {
        self.expect(Tok::Comma, "','").map(|_| ())
    }

    fn global_ref(&mut self) -> Result<GlobalId, Error> {
        let span = self.span();
        match self.bump().tok {
            Tok::Global(name) => match self.global_ids.get(&name) {
                Some(&(g, _)) => Ok(g),
                None if self.func_ids.contains_key(&name) => Err(Error::new(
                    span,
                    format!("@{name} is a function, not a global"),
                )),
                None => Err(Error::new(span, format!("undefined global @{name}"))),
            },
            other => Err(Error::new(
                span,
                format!("expected a global '@name', found {}", other.describe()),
            )),
        }
    }

    fn func_ref(&mut self) -> Result<FuncId, Error> {
        let span = self.span();
        match self.bump().tok {
            Tok::Global(name) => match self.func_ids.get(&name) {
                Some(&(f, _)) => Ok(f),
                None if self.global_ids.contains_key(&name) => Err(Error::new(
                    span,
                    format!("@{name} is a global, not a function"),
                )),
                None => Err(Error::new(span, format!("undefined function @{name}"))),
            },
            other => Err(Error::new(
                span,
                format!("expected a function '@name', found {}", other.describe()),
            )),
        }
    }

    fn call_args(&mut self, st: &mut FuncState<'a>) -> Result<Vec<Operand>, Error> {
        self.expect(Tok::LParen, "'('")?;
        let mut args = Vec::new();
        if !matches!(self.peek(), Tok::RParen) {
            loop {
                args.push(self.operand(st)?);
                if matches!(self.peek(), Tok::Comma) {
                    self.bump();
                    continue;
                }
                break;
            }
        }
        self.expect(Tok::RParen, "')' or ','")?;
        Ok(args)
    }

    fn string(&mut self) -> Result<String, Error> {
        let span = self.span();
        match self.bump().tok {
            Tok::Str(raw) => Ok(unescape(raw)),
            other => Err(Error::new(
                span,
                format!("expected a string, found {}", other.describe()),
            )),
        }
    }

    fn label(&mut self, st: &mut FuncState<'a>) -> Result<BlockId, Error> {
        let (name, span) = self.expect_ident("a label")?;
        Ok(st.label_ref(name, span))
    }
}

#[cfg(test)]
mod tests;
