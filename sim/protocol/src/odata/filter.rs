//! `$filter` parsing and evaluation for both OData dialects the simulator speaks.
//!
//! Error positions: every position in an error message is a 0-based *character* index into the
//! text being parsed. A syntax error points at the start of the offending token (or at the text
//! length when the input ended too early). An unterminated string literal is reported where the
//! lexer ran out of input while looking for the closing quote, i.e. at the character length of
//! the text, as Microsoft.OData.Core does: `lastname eq 'O'Bryan'` (21 characters) gives
//! `There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''.`

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Something a filter reads properties of: a stored row, or a JSON object (metadata).
pub trait Fields {
    /// The value of a property, if present.
    fn field(&self, name: &str) -> Option<&Value>;
}

impl Fields for Map<String, Value> {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl Fields for dwsim_model::Row {
    fn field(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

impl<T: Fields + ?Sized> Fields for &T {
    fn field(&self, name: &str) -> Option<&Value> {
        (**self).field(name)
    }
}

/// Which service's `$filter` rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The Dataverse Web API.
    Dataverse,
    /// The Finance & Operations OData endpoint.
    FinOps,
}

/// A parsed `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal: string, number, boolean or null. GUID, date and enum literals are strings.
    Literal(Value),
    /// A property path, looked up verbatim as a row key (e.g. `msdyn_company/cdm_companycode`).
    Property(String),
    /// `left eq right`.
    Eq(Box<Expr>, Box<Expr>),
    /// `left ne right`.
    Ne(Box<Expr>, Box<Expr>),
    /// `left gt right`.
    Gt(Box<Expr>, Box<Expr>),
    /// `left ge right`.
    Ge(Box<Expr>, Box<Expr>),
    /// `left lt right`.
    Lt(Box<Expr>, Box<Expr>),
    /// `left le right`.
    Le(Box<Expr>, Box<Expr>),
    /// `left add right` (F&O only).
    Add(Box<Expr>, Box<Expr>),
    /// `left sub right` (F&O only).
    Sub(Box<Expr>, Box<Expr>),
    /// `left mul right` (F&O only).
    Mul(Box<Expr>, Box<Expr>),
    /// `left div right` (F&O only).
    Div(Box<Expr>, Box<Expr>),
    /// `left mod right` (F&O only).
    Mod(Box<Expr>, Box<Expr>),
    /// All operands joined with `and`.
    And(Vec<Expr>),
    /// All operands joined with `or`.
    Or(Vec<Expr>),
    /// `not operand`.
    Not(Box<Expr>),
    /// A function call such as `contains(name,'x')`.
    Call(String, Vec<Expr>),
}

/// Why a filter could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// The message, in the style of the OData library.
    pub message: String,
}

impl FilterError {
    fn new(message: impl Into<String>) -> Self {
        FilterError {
            message: message.into(),
        }
    }
}

/// Parses `text`. `aliases` maps parameter alias names WITH the leading '@' (e.g. "@p1") to their raw literal text (e.g. "'Contoso'" or "5"), as given in the query string; an alias used in the expression is replaced by its parsed literal. Unknown alias -> error.
pub fn parse(
    text: &str,
    dialect: Dialect,
    aliases: &BTreeMap<String, String>,
) -> Result<Expr, FilterError> {
    let toks = lex(text)?;
    let mut p = Parser {
        toks,
        idx: 0,
        text,
        len: text.chars().count(),
        dialect,
        aliases,
        depth: 0,
        arith_ops: 0,
    };
    let expr = p.parse_or()?;
    if p.idx < p.toks.len() {
        return Err(p.err());
    }
    Ok(expr)
}

/// Evaluates the expression against one row. Property names are looked up in `row` exactly (case-sensitive). A property missing from the row counts as null.
pub fn eval(expr: &Expr, row: &dyn Fields, dialect: Dialect) -> Result<bool, FilterError> {
    eval_bool(expr, row, dialect)
}

/// Every property name the expression references (for validating against a schema), in first-seen order without duplicates.
pub fn properties(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    collect_properties(expr, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Operators

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl ArithOp {
    fn name(self) -> &'static str {
        match self {
            ArithOp::Add => "add",
            ArithOp::Sub => "sub",
            ArithOp::Mul => "mul",
            ArithOp::Div => "div",
            ArithOp::Mod => "mod",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum BinOp {
    Cmp(CmpOp),
    Arith(ArithOp),
}

fn cmp_op(word: &str) -> Option<CmpOp> {
    Some(match word {
        "eq" => CmpOp::Eq,
        "ne" => CmpOp::Ne,
        "gt" => CmpOp::Gt,
        "ge" => CmpOp::Ge,
        "lt" => CmpOp::Lt,
        "le" => CmpOp::Le,
        _ => return None,
    })
}

fn additive_op(word: &str) -> Option<ArithOp> {
    match word {
        "add" => Some(ArithOp::Add),
        "sub" => Some(ArithOp::Sub),
        _ => None,
    }
}

fn multiplicative_op(word: &str) -> Option<ArithOp> {
    match word {
        "mul" => Some(ArithOp::Mul),
        "div" => Some(ArithOp::Div),
        "mod" => Some(ArithOp::Mod),
        _ => None,
    }
}

const KEYWORDS: &[&str] = &[
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "add", "sub", "mul", "div", "mod",
];

fn make_cmp(op: CmpOp, l: Expr, r: Expr) -> Expr {
    let (l, r) = (Box::new(l), Box::new(r));
    match op {
        CmpOp::Eq => Expr::Eq(l, r),
        CmpOp::Ne => Expr::Ne(l, r),
        CmpOp::Gt => Expr::Gt(l, r),
        CmpOp::Ge => Expr::Ge(l, r),
        CmpOp::Lt => Expr::Lt(l, r),
        CmpOp::Le => Expr::Le(l, r),
    }
}

fn make_arith(op: ArithOp, l: Expr, r: Expr) -> Expr {
    let (l, r) = (Box::new(l), Box::new(r));
    match op {
        ArithOp::Add => Expr::Add(l, r),
        ArithOp::Sub => Expr::Sub(l, r),
        ArithOp::Mul => Expr::Mul(l, r),
        ArithOp::Div => Expr::Div(l, r),
        ArithOp::Mod => Expr::Mod(l, r),
    }
}

impl Expr {
    fn binary(&self) -> Option<(BinOp, &Expr, &Expr)> {
        let (op, l, r) = match self {
            Expr::Eq(l, r) => (BinOp::Cmp(CmpOp::Eq), l, r),
            Expr::Ne(l, r) => (BinOp::Cmp(CmpOp::Ne), l, r),
            Expr::Gt(l, r) => (BinOp::Cmp(CmpOp::Gt), l, r),
            Expr::Ge(l, r) => (BinOp::Cmp(CmpOp::Ge), l, r),
            Expr::Lt(l, r) => (BinOp::Cmp(CmpOp::Lt), l, r),
            Expr::Le(l, r) => (BinOp::Cmp(CmpOp::Le), l, r),
            Expr::Add(l, r) => (BinOp::Arith(ArithOp::Add), l, r),
            Expr::Sub(l, r) => (BinOp::Arith(ArithOp::Sub), l, r),
            Expr::Mul(l, r) => (BinOp::Arith(ArithOp::Mul), l, r),
            Expr::Div(l, r) => (BinOp::Arith(ArithOp::Div), l, r),
            Expr::Mod(l, r) => (BinOp::Arith(ArithOp::Mod), l, r),
            _ => return None,
        };
        Some((op, l.as_ref(), r.as_ref()))
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(Value),
    Ident(String),
    Alias(String),
    LParen,
    RParen,
    Comma,
    /// `=` or `:`; only lexed so that unsupported function calls (key-value arguments,
    /// lambdas) report the function, never valid in an expression.
    Punct,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
}

fn syntax_error(pos: usize, text: &str) -> FilterError {
    FilterError::new(format!("Syntax error at position {pos} in '{text}'."))
}

fn unterminated(pos: usize, text: &str) -> FilterError {
    FilterError::new(format!(
        "There is an unterminated literal at position {pos} in '{text}'."
    ))
}

fn unsupported_operator(op: &str) -> FilterError {
    FilterError::new(format!(
        "The query specified in the URI is not valid. The '{op}' operator is not supported."
    ))
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut i = 0;
    let mut out = Vec::new();
    while i < n {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' | ':' => {
                i += 1;
                Tok::Punct
            }
            '\'' => {
                let (s, next) = lex_string(&chars, i, text)?;
                i = next;
                Tok::Lit(Value::String(s))
            }
            '@' => {
                let (tok, next) = lex_alias(&chars, i, text)?;
                i = next;
                tok
            }
            _ => {
                if let Some(end) = match_guid(&chars, i).or_else(|| match_date(&chars, i)) {
                    let s: String = chars[i..end].iter().collect();
                    i = end;
                    Tok::Lit(Value::String(s))
                } else if c == '-' || c.is_ascii_digit() {
                    let (v, next) = lex_number(&chars, i, text)?;
                    i = next;
                    Tok::Lit(v)
                } else if is_ident_start(c) {
                    let (tok, next) = lex_word(&chars, i, text)?;
                    i = next;
                    tok
                } else {
                    return Err(syntax_error(i, text));
                }
            }
        };
        out.push(Token { tok, pos: start });
    }
    Ok(out)
}

/// Lexes a parameter alias (`@p1`) starting at the `@` at `at`.
fn lex_alias(chars: &[char], at: usize, text: &str) -> Result<(Tok, usize), FilterError> {
    let mut j = at + 1;
    while j < chars.len() && is_ident_char(chars[j]) {
        j += 1;
    }
    if j == at + 1 {
        return Err(syntax_error(at, text));
    }
    Ok((Tok::Alias(chars[at..j].iter().collect()), j))
}

/// Lexes a word starting at `at`: a name or path (`a/b`, `Namespace.Function`), or a typed
/// literal (`Namespace.Type'Value'`, `guid'…'`, `datetime'…'`), which reads as its string.
fn lex_word(chars: &[char], at: usize, text: &str) -> Result<(Tok, usize), FilterError> {
    let n = chars.len();
    let mut j = at;
    loop {
        while j < n && is_ident_char(chars[j]) {
            j += 1;
        }
        if j + 1 < n && (chars[j] == '/' || chars[j] == '.') && is_ident_start(chars[j + 1]) {
            j += 1;
            continue;
        }
        break;
    }
    if j < n && chars[j] == '\'' {
        let (s, next) = lex_string(chars, j, text)?;
        return Ok((Tok::Lit(Value::String(s)), next));
    }
    Ok((Tok::Ident(chars[at..j].iter().collect()), j))
}

/// Lexes a quoted string starting at the quote at `q`; returns the value and the index after it.
fn lex_string(chars: &[char], q: usize, text: &str) -> Result<(String, usize), FilterError> {
    let n = chars.len();
    let mut s = String::new();
    let mut j = q + 1;
    loop {
        if j >= n {
            return Err(unterminated(n, text));
        }
        if chars[j] == '\'' {
            if j + 1 < n && chars[j + 1] == '\'' {
                s.push('\'');
                j += 2;
            } else {
                return Ok((s, j + 1));
            }
        } else {
            s.push(chars[j]);
            j += 1;
        }
    }
}

fn ends_token(chars: &[char], j: usize) -> bool {
    j >= chars.len() || !(is_ident_char(chars[j]) || chars[j] == '-')
}

/// Matches an unquoted GUID at `i`, returning the end index.
fn match_guid(chars: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    for (k, len) in [8usize, 4, 4, 4, 12].iter().enumerate() {
        if k > 0 {
            if chars.get(j) != Some(&'-') {
                return None;
            }
            j += 1;
        }
        for _ in 0..*len {
            if !chars.get(j)?.is_ascii_hexdigit() {
                return None;
            }
            j += 1;
        }
    }
    ends_token(chars, j).then_some(j)
}

/// Matches an unquoted date or date-time (`2021-06-23`, `2021-06-23T10:00:00Z`) at `i`.
fn match_date(chars: &[char], i: usize) -> Option<usize> {
    let shape = "dddd-dd-dd";
    for (k, want) in shape.chars().enumerate() {
        let c = *chars.get(i + k)?;
        let ok = if want == 'd' {
            c.is_ascii_digit()
        } else {
            c == want
        };
        if !ok {
            return None;
        }
    }
    let mut j = i + shape.len();
    if chars.get(j) == Some(&'T') {
        j += 1;
        while j < chars.len()
            && (chars[j].is_ascii_digit() || matches!(chars[j], ':' | '.' | 'Z' | '+' | '-'))
        {
            j += 1;
        }
    }
    ends_token(chars, j).then_some(j)
}

fn lex_number(chars: &[char], i: usize, text: &str) -> Result<(Value, usize), FilterError> {
    let n = chars.len();
    let digit_at = |j: usize| j < n && chars[j].is_ascii_digit();
    let mut j = i;
    if chars[j] == '-' {
        j += 1;
    }
    let digits_start = j;
    while digit_at(j) {
        j += 1;
    }
    if j == digits_start {
        return Err(syntax_error(i, text));
    }
    let mut integral = true;
    if j < n && chars[j] == '.' && digit_at(j + 1) {
        integral = false;
        j += 1;
        while digit_at(j) {
            j += 1;
        }
    }
    if j < n && (chars[j] == 'e' || chars[j] == 'E') {
        let sign = j + 1 < n && (chars[j + 1] == '+' || chars[j + 1] == '-');
        let first = if sign { j + 2 } else { j + 1 };
        if digit_at(first) {
            integral = false;
            j = first;
            while digit_at(j) {
                j += 1;
            }
        }
    }
    let num_text: String = chars[i..j].iter().collect();
    if j < n
        && matches!(chars[j], 'm' | 'M' | 'd' | 'D' | 'f' | 'F' | 'l' | 'L')
        && ends_token(chars, j + 1)
    {
        j += 1;
    }
    if j < n && (is_ident_char(chars[j]) || chars[j] == '.') {
        return Err(syntax_error(j, text));
    }
    if integral {
        if let Ok(v) = num_text.parse::<i64>() {
            return Ok((Value::from(v), j));
        }
    }
    match num_text.parse::<f64>().ok().and_then(Number::from_f64) {
        Some(num) => Ok((Value::Number(num), j)),
        None => Err(syntax_error(i, text)),
    }
}

// ---------------------------------------------------------------------------------------------
// Parser

const MAX_DEPTH: usize = 64;
const MAX_ARITH_OPS: usize = 100;

struct Parser<'a> {
    toks: Vec<Token>,
    idx: usize,
    text: &'a str,
    len: usize,
    dialect: Dialect,
    aliases: &'a BTreeMap<String, String>,
    depth: usize,
    arith_ops: usize,
}

impl Parser<'_> {
    fn pos(&self) -> usize {
        self.toks.get(self.idx).map_or(self.len, |t| t.pos)
    }

    fn err(&self) -> FilterError {
        syntax_error(self.pos(), self.text)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.idx).map(|t| &t.tok)
    }

    fn peek_ident(&self) -> Option<&str> {
        match self.peek() {
            Some(Tok::Ident(s)) => Some(s.as_str()),
            _ => None,
        }
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(
                "The filter expression is nested too deeply.",
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Expr, FilterError> {
        let first = self.parse_and()?;
        if self.peek_ident() != Some("or") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek_ident() == Some("or") {
            self.idx += 1;
            items.push(self.parse_and()?);
        }
        Ok(Expr::Or(items))
    }

    fn parse_and(&mut self) -> Result<Expr, FilterError> {
        let first = self.parse_cmp()?;
        if self.peek_ident() != Some("and") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek_ident() == Some("and") {
            self.idx += 1;
            items.push(self.parse_cmp()?);
        }
        Ok(Expr::And(items))
    }

    fn check_unsupported(&self) -> Result<(), FilterError> {
        match self.peek_ident() {
            Some(op @ ("has" | "in")) => Err(unsupported_operator(op)),
            _ => Ok(()),
        }
    }

    fn parse_cmp(&mut self) -> Result<Expr, FilterError> {
        let left = self.parse_add()?;
        self.check_unsupported()?;
        if let Some(op) = self.peek_ident().and_then(cmp_op) {
            self.idx += 1;
            let right = self.parse_add()?;
            self.check_unsupported()?;
            return Ok(make_cmp(op, left, right));
        }
        Ok(left)
    }

    fn arith_allowed(&mut self, op: ArithOp) -> Result<(), FilterError> {
        if self.dialect == Dialect::Dataverse {
            return Err(unsupported_operator(op.name()));
        }
        self.arith_ops += 1;
        if self.arith_ops > MAX_ARITH_OPS {
            return Err(FilterError::new("The filter expression is too complex."));
        }
        Ok(())
    }

    fn parse_add(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.parse_mul()?;
        while let Some(op) = self.peek_ident().and_then(additive_op) {
            self.arith_allowed(op)?;
            self.idx += 1;
            let right = self.parse_mul()?;
            left = make_arith(op, left, right);
        }
        Ok(left)
    }

    fn parse_mul(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.parse_unary()?;
        while let Some(op) = self.peek_ident().and_then(multiplicative_op) {
            self.arith_allowed(op)?;
            self.idx += 1;
            let right = self.parse_unary()?;
            left = make_arith(op, left, right);
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Expr, FilterError> {
        if self.peek_ident() == Some("not") {
            self.idx += 1;
            self.enter()?;
            let inner = self.parse_unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.parse_primary()
    }

    fn parse_primary(&mut self) -> Result<Expr, FilterError> {
        let pos = self.pos();
        let Some(tok) = self.peek().cloned() else {
            return Err(self.err());
        };
        match tok {
            Tok::Lit(v) => {
                self.idx += 1;
                Ok(Expr::Literal(v))
            }
            Tok::Alias(name) => {
                self.idx += 1;
                match self.aliases.get(&name) {
                    // Alias values may not themselves refer to aliases.
                    Some(raw) => parse(raw, self.dialect, &BTreeMap::new()),
                    None => Err(FilterError::new(format!(
                        "The parameter alias '{name}' is not defined in the query."
                    ))),
                }
            }
            Tok::LParen => {
                self.idx += 1;
                self.enter()?;
                let inner = self.parse_or()?;
                self.depth -= 1;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.err());
                }
                self.idx += 1;
                Ok(inner)
            }
            Tok::Ident(name) => {
                self.idx += 1;
                if self.peek() == Some(&Tok::LParen) {
                    return self.parse_call(name);
                }
                match name.as_str() {
                    "true" => Ok(Expr::Literal(Value::Bool(true))),
                    "false" => Ok(Expr::Literal(Value::Bool(false))),
                    "null" => Ok(Expr::Literal(Value::Null)),
                    "has" | "in" => Err(unsupported_operator(&name)),
                    w if KEYWORDS.contains(&w) => Err(syntax_error(pos, self.text)),
                    _ => Ok(Expr::Property(name)),
                }
            }
            Tok::RParen | Tok::Comma | Tok::Punct => Err(self.err()),
        }
    }

    /// Parses `name(args…)`; the current token is the opening parenthesis.
    fn parse_call(&mut self, name: String) -> Result<Expr, FilterError> {
        let Some(arity) = function_arity(&name) else {
            return Err(FilterError::new(format!("Unknown function '{name}'.")));
        };
        self.idx += 1; // '('
        self.enter()?;
        let mut args = Vec::new();
        if self.peek() == Some(&Tok::RParen) {
            self.idx += 1;
        } else {
            loop {
                args.push(self.parse_or()?);
                match self.peek() {
                    Some(Tok::Comma) => self.idx += 1,
                    Some(Tok::RParen) => {
                        self.idx += 1;
                        break;
                    }
                    _ => return Err(self.err()),
                }
            }
        }
        self.depth -= 1;
        if args.len() != arity {
            return Err(FilterError::new(format!(
                "The function '{name}' requires {arity} argument(s), but {} were given.",
                args.len()
            )));
        }
        Ok(Expr::Call(name, args))
    }
}

fn function_arity(name: &str) -> Option<usize> {
    match name {
        "contains" | "startswith" | "endswith" | "indexof" | "concat" => Some(2),
        "tolower" | "toupper" | "length" | "trim" => Some(1),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

fn not_boolean() -> FilterError {
    FilterError::new("The expression is not a boolean expression.")
}

fn eval_bool(expr: &Expr, row: &dyn Fields, d: Dialect) -> Result<bool, FilterError> {
    match expr {
        Expr::And(items) => {
            for e in items {
                if !eval_bool(e, row, d)? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Expr::Or(items) => {
            for e in items {
                if eval_bool(e, row, d)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Expr::Not(inner) => Ok(!eval_bool(inner, row, d)?),
        _ => match eval_value(expr, row, d)? {
            Value::Bool(b) => Ok(b),
            // A null in boolean position (e.g. a missing boolean column) does not match.
            Value::Null => Ok(false),
            _ => Err(not_boolean()),
        },
    }
}

fn eval_value(expr: &Expr, row: &dyn Fields, d: Dialect) -> Result<Value, FilterError> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Property(p) => Ok(row.field(p).cloned().unwrap_or(Value::Null)),
        Expr::And(_) | Expr::Or(_) | Expr::Not(_) => eval_bool(expr, row, d).map(Value::Bool),
        Expr::Call(name, args) => call(name, args, row, d),
        _ => match expr.binary() {
            Some((BinOp::Cmp(op), l, r)) => compare_exprs(op, l, r, row, d).map(Value::Bool),
            Some((BinOp::Arith(op), l, r)) => {
                arith(op, eval_value(l, row, d)?, eval_value(r, row, d)?)
            }
            None => Err(not_boolean()),
        },
    }
}

fn wildcard_pattern(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(Value::String(s)) if s.contains('*') => Some(s),
        _ => None,
    }
}

fn compare_exprs(
    op: CmpOp,
    l: &Expr,
    r: &Expr,
    row: &dyn Fields,
    d: Dialect,
) -> Result<bool, FilterError> {
    let lv = eval_value(l, row, d)?;
    let rv = eval_value(r, row, d)?;
    if d == Dialect::FinOps && matches!(op, CmpOp::Eq | CmpOp::Ne) {
        let pattern = wildcard_pattern(r)
            .map(|p| (p, &lv))
            .or_else(|| wildcard_pattern(l).map(|p| (p, &rv)));
        if let Some((pattern, other)) = pattern {
            let matched = match as_text(other) {
                Some(s) => wildcard_match(&lower_chars(&s), &lower_chars(pattern)),
                None => false,
            };
            return Ok(if op == CmpOp::Eq { matched } else { !matched });
        }
    }
    Ok(compare_values(op, &lv, &rv))
}

fn lower_chars(s: &str) -> Vec<char> {
    s.to_lowercase().chars().collect()
}

/// `*` matches any run of characters (including none); everything else matches itself.
fn wildcard_match(text: &[char], pat: &[char]) -> bool {
    let (mut t, mut p) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && pat[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if p < pat.len() && pat[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pat[p.min(pat.len())..].iter().all(|c| *c == '*')
}

fn num_cmp(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn parse_number(s: &str) -> Option<Number> {
    let t = s.trim();
    if let Ok(i) = t.parse::<i64>() {
        return Some(Number::from(i));
    }
    t.parse::<f64>().ok().and_then(Number::from_f64)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn compare_values(op: CmpOp, a: &Value, b: &Value) -> bool {
    match (a.is_null(), b.is_null()) {
        (true, true) => return op == CmpOp::Eq,
        (true, false) | (false, true) => return op == CmpOp::Ne,
        (false, false) => {}
    }
    let ord: Option<Ordering> = match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y),
        (Value::String(x), Value::String(y)) => Some(x.to_lowercase().cmp(&y.to_lowercase())),
        // A string column against a number: numeric if the string is a number, else no match.
        (Value::String(s), Value::Number(n)) => parse_number(s).and_then(|m| num_cmp(&m, n)),
        // A number column against a string: numeric if possible, else as strings.
        (Value::Number(n), Value::String(s)) => match parse_number(s) {
            Some(m) => num_cmp(n, &m),
            None => Some(n.to_string().cmp(&s.to_lowercase())),
        },
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::String(s)) => parse_bool(s).map(|y| x.cmp(&y)),
        (Value::String(s), Value::Bool(y)) => parse_bool(s).map(|x| x.cmp(y)),
        _ => (a == b).then_some(Ordering::Equal),
    };
    match ord {
        None => op == CmpOp::Ne,
        Some(o) => match op {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
        },
    }
}

fn arith(op: ArithOp, a: Value, b: Value) -> Result<Value, FilterError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let (Value::Number(x), Value::Number(y)) = (&a, &b) else {
        return Err(FilterError::new(format!(
            "The '{}' operator requires numeric operands.",
            op.name()
        )));
    };
    let div_zero = || FilterError::new("Division by zero.");
    if let (Some(i), Some(j)) = (x.as_i64(), y.as_i64()) {
        let r = match op {
            ArithOp::Add => i.checked_add(j),
            ArithOp::Sub => i.checked_sub(j),
            ArithOp::Mul => i.checked_mul(j),
            ArithOp::Div | ArithOp::Mod if j == 0 => return Err(div_zero()),
            ArithOp::Div => i.checked_div(j),
            ArithOp::Mod => i.checked_rem(j),
        };
        if let Some(r) = r {
            return Ok(Value::from(r));
        }
    }
    let (f, g) = (
        x.as_f64().unwrap_or(f64::NAN),
        y.as_f64().unwrap_or(f64::NAN),
    );
    let r = match op {
        ArithOp::Add => f + g,
        ArithOp::Sub => f - g,
        ArithOp::Mul => f * g,
        ArithOp::Div | ArithOp::Mod if g == 0.0 => return Err(div_zero()),
        ArithOp::Div => f / g,
        ArithOp::Mod => f % g,
    };
    Number::from_f64(r)
        .map(Value::Number)
        .ok_or_else(|| FilterError::new("Arithmetic overflow."))
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_arg(name: &str, v: &Value) -> Result<Option<String>, FilterError> {
    match v {
        Value::Null => Ok(None),
        other => as_text(other).map(Some).ok_or_else(|| {
            FilterError::new(format!("The function '{name}' requires string arguments."))
        }),
    }
}

fn call(name: &str, args: &[Expr], row: &dyn Fields, d: Dialect) -> Result<Value, FilterError> {
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(eval_value(a, row, d)?);
    }
    match (name, vals.as_slice()) {
        ("contains" | "startswith" | "endswith" | "indexof", [a, b]) => {
            let (Some(a), Some(b)) = (string_arg(name, a)?, string_arg(name, b)?) else {
                return Ok(if name == "indexof" {
                    Value::Null
                } else {
                    Value::Bool(false)
                });
            };
            // String comparisons are case-insensitive in both dialects.
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            Ok(match name {
                "contains" => Value::Bool(a.contains(&b)),
                "startswith" => Value::Bool(a.starts_with(&b)),
                "endswith" => Value::Bool(a.ends_with(&b)),
                _ => Value::from(a.find(&b).map_or(-1, |i| a[..i].chars().count() as i64)),
            })
        }
        ("concat", [a, b]) => match (string_arg(name, a)?, string_arg(name, b)?) {
            (Some(a), Some(b)) => Ok(Value::String(a + &b)),
            _ => Ok(Value::Null),
        },
        ("tolower" | "toupper" | "trim" | "length", [a]) => {
            let Some(s) = string_arg(name, a)? else {
                return Ok(Value::Null);
            };
            Ok(match name {
                "tolower" => Value::String(s.to_lowercase()),
                "toupper" => Value::String(s.to_uppercase()),
                "trim" => Value::String(s.trim().to_string()),
                _ => Value::from(s.chars().count() as i64),
            })
        }
        _ => Err(FilterError::new(format!("Unknown function '{name}'."))),
    }
}

fn collect_properties(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Property(p) => {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Expr::Literal(_) => {}
        Expr::And(items) | Expr::Or(items) | Expr::Call(_, items) => {
            for e in items {
                collect_properties(e, out);
            }
        }
        Expr::Not(inner) => collect_properties(inner, out),
        _ => {
            if let Some((_, l, r)) = expr.binary() {
                collect_properties(l, out);
                collect_properties(r, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn p(text: &str, d: Dialect) -> Result<Expr, FilterError> {
        parse(text, d, &BTreeMap::new())
    }

    fn check(text: &str, d: Dialect, r: &Value) -> bool {
        let e = p(text, d).unwrap_or_else(|e| panic!("parse {text}: {}", e.message));
        eval(&e, &row(r.clone()), d).unwrap_or_else(|e| panic!("eval {text}: {}", e.message))
    }

    fn err(text: &str, d: Dialect) -> String {
        match p(text, d) {
            Ok(e) => panic!("expected error for {text}, got {e:?}"),
            Err(e) => e.message,
        }
    }

    const DV: Dialect = Dialect::Dataverse;
    const FO: Dialect = Dialect::FinOps;

    #[test]
    fn dataverse_string_eq_is_case_insensitive() {
        let r = json!({"name": "Contoso Ltd"});
        assert!(check("name eq 'contoso ltd'", DV, &r));
        assert!(!check("name ne 'CONTOSO LTD'", DV, &r));
        assert!(check("name gt 'a'", DV, &r));
    }

    #[test]
    fn finops_string_eq_is_case_insensitive() {
        let r = json!({"dataAreaId": "USMF"});
        assert!(check("dataAreaId eq 'usmf'", FO, &r));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let e = "a eq 1 or b eq 2 and c eq 3";
        assert!(check(e, DV, &json!({"a": 1, "b": 0, "c": 0})));
        assert!(!check(e, DV, &json!({"a": 0, "b": 2, "c": 0})));
        assert!(check(e, DV, &json!({"a": 0, "b": 2, "c": 3})));
    }

    #[test]
    fn parentheses_override_precedence() {
        let e = "(a eq 1 or b eq 2) and c eq 3";
        assert!(!check(e, DV, &json!({"a": 1, "b": 0, "c": 0})));
        assert!(check(e, DV, &json!({"a": 1, "b": 0, "c": 3})));
    }

    #[test]
    fn nested_parentheses() {
        assert!(check("((((a eq 1))))", DV, &json!({"a": 1})));
        assert!(check(
            "(a eq 1 and (b eq 2 or (c eq 3)))",
            DV,
            &json!({"a": 1, "b": 0, "c": 3})
        ));
    }

    #[test]
    fn doubled_quotes_escape() {
        let e = p("lastname eq 'O''Bryan'", DV);
        assert_eq!(
            e,
            Ok(Expr::Eq(
                Box::new(Expr::Property("lastname".into())),
                Box::new(Expr::Literal(json!("O'Bryan")))
            ))
        );
        assert!(check(
            "lastname eq 'O''Bryan'",
            DV,
            &json!({"lastname": "o'bryan"})
        ));
    }

    #[test]
    fn unterminated_literal_message() {
        let want = "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''.";
        assert_eq!(err("lastname eq 'O'Bryan'", DV), want);
        assert_eq!(err("lastname eq 'O'Bryan'", FO), want);
        assert_eq!(
            err("name eq 'abc", DV),
            "There is an unterminated literal at position 12 in 'name eq 'abc'."
        );
    }

    #[test]
    fn syntax_error_positions() {
        assert_eq!(
            err("a eq 1)", DV),
            "Syntax error at position 6 in 'a eq 1)'."
        );
        assert_eq!(err("a eq", DV), "Syntax error at position 4 in 'a eq'.");
        assert_eq!(
            err("a eq 1 b", DV),
            "Syntax error at position 7 in 'a eq 1 b'."
        );
    }

    #[test]
    fn aliases_are_substituted() {
        let mut al = BTreeMap::new();
        al.insert("@p1".to_string(), "'Contoso'".to_string());
        al.insert("@p2".to_string(), "5".to_string());
        let e = parse("name eq @p1 and n gt @p2", DV, &al);
        let e = e.unwrap_or_else(|e| panic!("{}", e.message));
        assert!(eval(&e, &row(json!({"name": "contoso", "n": 6})), DV).unwrap_or(false));
        assert!(!eval(&e, &row(json!({"name": "contoso", "n": 5})), DV).unwrap_or(true));
        assert_eq!(properties(&e), vec!["name", "n"]);
    }

    #[test]
    fn unknown_alias_is_error() {
        assert!(p("name eq @p9", DV).is_err());
    }

    #[test]
    fn guid_literal_compares_case_insensitively() {
        let r = json!({"accountid": "ABCDEF00-0000-0000-0000-000000000001"});
        assert!(check(
            "accountid eq abcdef00-0000-0000-0000-000000000001",
            DV,
            &r
        ));
        assert_eq!(
            p(
                "_parentcustomerid_value eq 00000000-0000-0000-0000-000000000001",
                DV
            ),
            Ok(Expr::Eq(
                Box::new(Expr::Property("_parentcustomerid_value".into())),
                Box::new(Expr::Literal(json!("00000000-0000-0000-0000-000000000001")))
            ))
        );
    }

    #[test]
    fn finops_wildcards() {
        let r = json!({"Name": "Contoso Retail West"});
        assert!(check("Name eq '*retail*'", FO, &r));
        assert!(check("Name eq 'c*'", FO, &r));
        assert!(check("Name eq '*west'", FO, &r));
        assert!(!check("Name eq 'x*'", FO, &r));
        assert!(check("Name ne 'x*'", FO, &r));
        assert!(check("Name eq 'Contoso*Retail*'", FO, &r));
        assert!(!check("Name eq '*'", FO, &json!({})));
        // Dataverse treats '*' literally.
        assert!(!check("Name eq '*retail*'", DV, &r));
    }

    #[test]
    fn has_and_in_are_rejected() {
        assert_eq!(
            err("Color has Ns.Color'Red'", FO),
            "The query specified in the URI is not valid. The 'has' operator is not supported."
        );
        assert_eq!(
            err("Id in ('a','b')", FO),
            "The query specified in the URI is not valid. The 'in' operator is not supported."
        );
        assert!(p("Id in ('a','b')", DV).is_err());
    }

    #[test]
    fn not_operator() {
        let r = json!({"name": "Contoso", "a": 1});
        assert!(!check("not contains(name,'cont')", DV, &r));
        assert!(check("not contains(name,'xyz')", DV, &r));
        assert!(!check("not (a eq 1)", DV, &r));
        assert!(check("not(a eq 2) and a eq 1", DV, &r));
        assert!(check("not not (a eq 1)", DV, &r));
    }

    #[test]
    fn numeric_comparisons() {
        let r = json!({"n": 5, "price": 12.5, "neg": -3});
        assert!(check("n gt 4", DV, &r));
        assert!(check("n ge 5.0", DV, &r));
        assert!(!check("n lt 5", DV, &r));
        assert!(check("price eq 12.50", DV, &r));
        assert!(check("price lt 13", DV, &r));
        assert!(check("neg eq -3", DV, &r));
        assert!(check("neg lt -2", DV, &r));
        assert!(check("n eq 5m", FO, &r));
    }

    #[test]
    fn null_handling() {
        let r = json!({"a": null, "b": "x"});
        assert!(check("a eq null", DV, &r));
        assert!(check("missing eq null", DV, &r));
        assert!(!check("a ne null", DV, &r));
        assert!(check("b ne null", DV, &r));
        assert!(!check("a gt 1", DV, &r));
        assert!(!check("a lt 1", DV, &r));
        assert!(!check("contains(a,'x')", DV, &r));
        assert!(!check("startswith(missing,'x')", FO, &r));
    }

    #[test]
    fn mixed_type_comparisons() {
        let r = json!({"s": "42", "t": "abc", "n": 7, "flag": true});
        assert!(check("s eq 42", DV, &r));
        assert!(check("s gt 41", DV, &r));
        assert!(!check("t eq 1", DV, &r));
        assert!(check("n eq '7'", DV, &r));
        assert!(check("flag eq 'true'", DV, &r));
        assert!(check("flag eq true", DV, &r));
        assert!(check("flag", DV, &r));
        assert!(!check("flag ne true", DV, &r));
    }

    #[test]
    fn string_functions() {
        let r = json!({"name": "Contoso Ltd"});
        assert!(check("startswith(name,'CON')", DV, &r));
        assert!(check("endswith(name,'ltd')", FO, &r));
        assert!(check("contains(name,'so l')", DV, &r));
        assert!(check("tolower(name) eq 'contoso ltd'", FO, &r));
        assert!(check("toupper(name) eq 'CONTOSO LTD'", FO, &r));
        assert!(check("length(name) eq 11", FO, &r));
    }

    #[test]
    fn unknown_function_error() {
        assert_eq!(
            err("frobnicate(name)", DV),
            "Unknown function 'frobnicate'."
        );
        assert_eq!(
            err("Microsoft.Dynamics.CRM.Today(PropertyName='createdon')", DV),
            "Unknown function 'Microsoft.Dynamics.CRM.Today'."
        );
        assert_eq!(
            err("contact_customer_accounts/any(o:o/name eq 'x')", DV),
            "Unknown function 'contact_customer_accounts/any'."
        );
        assert!(p("a = 1", DV).is_err());
    }

    #[test]
    fn non_boolean_expression_errors() {
        let e = p("name", DV).unwrap_or_else(|e| panic!("{}", e.message));
        let got = eval(&e, &row(json!({"name": "x"})), DV);
        assert_eq!(
            got,
            Err(FilterError::new(
                "The expression is not a boolean expression."
            ))
        );
        let e = p("tolower(name) and a eq 1", DV).unwrap_or_else(|e| panic!("{}", e.message));
        assert!(eval(&e, &row(json!({"name": "x", "a": 1})), DV).is_err());
    }

    #[test]
    fn finops_arithmetic() {
        let r = json!({"q": 10, "p": 2.5});
        assert!(check("q add 5 eq 15", FO, &r));
        assert!(check("q sub 2 mul 3 eq 4", FO, &r));
        assert!(check("q div 3 eq 3", FO, &r));
        assert!(check("q mod 3 eq 1", FO, &r));
        assert!(check("p mul 2 eq 5", FO, &r));
        let e = p("q div 0 eq 1", FO).unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(
            eval(&e, &row(r.clone()), FO),
            Err(FilterError::new("Division by zero."))
        );
        assert!(p("q add 5 eq 15", DV).is_err());
    }

    #[test]
    fn enum_and_date_literals() {
        let r = json!({"Blocked": "Yes", "createdon": "2021-06-23T10:00:00Z", "d": "2021-06-23"});
        assert!(check(
            "Blocked eq Microsoft.Dynamics.DataEntities.NoYes'Yes'",
            FO,
            &r
        ));
        assert!(check("createdon gt 2021-06-01T00:00:00Z", DV, &r));
        assert!(check("d eq 2021-06-23", DV, &r));
        assert!(check("d lt 2022-01-01", FO, &r));
    }

    #[test]
    fn navigation_path_lookup() {
        let r = json!({"msdyn_company/cdm_companycode": "USMF"});
        assert!(check("msdyn_company/cdm_companycode eq 'usmf'", DV, &r));
    }

    #[test]
    fn properties_in_first_seen_order() {
        let e = p(
            "b eq 1 and (a eq 2 or contains(c,'x')) and b ne 3 and not (a eq d/e)",
            DV,
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(properties(&e), vec!["b", "a", "c", "d/e"]);
    }

    #[test]
    fn garbage_inputs_error_without_panic() {
        let weird = [
            "",
            " ",
            "(",
            ")",
            "a eq",
            "'",
            "eq eq",
            "a eq 1 and",
            "contains(",
            "@p",
            "a eq 1)",
            "a eq (1",
            "contains(a,'x'",
            "contains(a 'x')",
            "tolower()",
            "-",
            "- 5",
            "1.2.3",
            "a eq 5abc",
            "a eq 'x' 'y'",
            "a eq ,",
            "not",
            "not (",
            "a gt gt 1",
            "@",
            "a/ eq 1",
            "a eq 1 or or b eq 2",
            "a eq b eq c",
            "()",
            "a eq 1e",
            "a.eq 1",
            "é eq 1",
            "a eq 99999999999999999999999999999999e999",
            "a eq 1 add",
            "x'",
        ];
        for w in weird {
            for d in [DV, FO] {
                assert!(p(w, d).is_err(), "expected error for {w:?}");
            }
        }
        let deep = "(".repeat(10_000) + "a eq 1" + &")".repeat(10_000);
        assert!(p(&deep, DV).is_err());
        let nots = "not ".repeat(10_000) + "a";
        assert!(p(&nots, DV).is_err());
        let long = vec!["a eq 1"; 5_000].join(" or ");
        let e = p(&long, DV).unwrap_or_else(|e| panic!("{}", e.message));
        assert!(check(&long, DV, &json!({"a": 1})));
        assert_eq!(properties(&e), vec!["a"]);
    }
}
