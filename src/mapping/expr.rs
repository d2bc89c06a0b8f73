//! The expression language of mapping rules: parsing.
//!
//! Owns turning `date(PID-7)`, `lookup(AdministrativeSex, PID-8.1)`,
//! `XPN_HumanName(PID-5[*])`, `PV1-2 = "I" and exists(PV1-44)` into an
//! AST whose every node remembers its offset in the text (for
//! `file:line:col` errors). What names mean (functions, sub-mappings,
//! tables) is checked by the compiler.
//!
//! ```text
//! expr    := or
//! or      := and ("or" and)*
//! and     := not ("and" not)*
//! not     := "not" not | compare
//! compare := primary (("=" | "!=") primary | "in" list)?
//! primary := STRING | NUMBER | true | false | null
//!          | HL7 path            PID-5.1  OBX[*]-5  PID-3[2].4.1  PV1
//!          | relative path       .   .1   .1.2   (within the current value;
//!                                on a segment .5.1.2 is field 5, component 1, subcomponent 2)
//!          | GROUP[*] | GROUP[n] a segment group of the message structure
//!          | name "(" args ")"   a function or a sub-mapping
//!          | name                a table or resource alias, as an argument
//!          | "(" expr ")" | list
//! list    := "[" expr ("," expr)* "]"
//! ```

use hl7v2::Path;

/// A node and its character offset in the expression text.
#[derive(Clone, Debug)]
pub struct At<T> {
    /// The node.
    pub node: T,
    /// Offset of its first character.
    pub offset: usize,
}

/// A literal.
#[derive(Clone, Debug, PartialEq)]
pub enum Lit {
    /// `"text"`
    Str(String),
    /// `1.50` (kept as written)
    Num(String),
    /// `true` / `false`
    Bool(bool),
    /// `null`
    Null,
}

/// An expression.
#[derive(Clone, Debug)]
pub enum Expr {
    /// A literal.
    Lit(Lit),
    /// An HL7 path from the current scope (`PID-5.1`).
    Path(Path, String),
    /// Components below the current value (`.1.2`); empty for `.` itself.
    Rel(Vec<u16>),
    /// A segment group (`ORDER_OBSERVATION[*]`); `None` index means all.
    Group(String, Option<u32>),
    /// A call: function or sub-mapping.
    Call(String, Vec<At<Expr>>),
    /// A bare name: a table or a resource alias, as a function argument.
    Name(String),
    /// `not x`
    Not(Box<At<Expr>>),
    /// `a and b`
    And(Box<At<Expr>>, Box<At<Expr>>),
    /// `a or b`
    Or(Box<At<Expr>>, Box<At<Expr>>),
    /// `a = b` (or `!=` when the flag is set)
    Eq(Box<At<Expr>>, Box<At<Expr>>, bool),
    /// `a in [..]`
    In(Box<At<Expr>>, Vec<At<Expr>>),
    /// `[a, b]`
    List(Vec<At<Expr>>),
}

/// A syntax error: where, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// Character offset in the expression.
    pub offset: usize,
    /// What was expected.
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Str(String),
    Num(String),
    Ident(String),
    Hl7(String),
    Rel(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eq,
    Ne,
    Star,
    End,
}

fn is_seg_start(c: &[char], i: usize) -> bool {
    c.len() >= i + 3
        && c[i].is_ascii_uppercase()
        && c[i + 1..i + 3]
            .iter()
            .all(|x| x.is_ascii_uppercase() || x.is_ascii_digit())
        && match c.get(i + 3) {
            None => true,
            Some(x) => matches!(x, '-' | '[' | ' ' | ',' | ')' | ']' | '=' | '!'),
        }
        && !(c.get(i + 3) == Some(&'[') && c.get(i + 4).is_some_and(|x| x.is_ascii_alphabetic()))
}

fn lex(text: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let start = i;
        match ch {
            ' ' | '\t' | '\n' | '\r' => {
                i += 1;
                continue;
            }
            '(' => out.push((Tok::LParen, i)),
            ')' => out.push((Tok::RParen, i)),
            '[' => out.push((Tok::LBracket, i)),
            ']' => out.push((Tok::RBracket, i)),
            ',' => out.push((Tok::Comma, i)),
            '*' => out.push((Tok::Star, i)),
            '=' => out.push((Tok::Eq, i)),
            '!' if c.get(i + 1) == Some(&'=') => {
                out.push((Tok::Ne, i));
                i += 2;
                continue;
            }
            '"' | '\'' => {
                let q = ch;
                let mut s = String::new();
                i += 1;
                loop {
                    match c.get(i) {
                        None => {
                            return Err(SyntaxError {
                                offset: start,
                                message: format!("this string has no closing {q}"),
                            });
                        }
                        Some('\\') if c.get(i + 1).is_some() => {
                            // `\n`, `\t`, `\r`; any other character stands for itself (`\"`, `\\`).
                            s.push(match c[i + 1] {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                            i += 2;
                        }
                        Some(x) if *x == q => {
                            i += 1;
                            break;
                        }
                        Some(x) => {
                            s.push(*x);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), start));
                continue;
            }
            '.' => {
                let mut j = i + 1;
                while j < c.len() && (c[j].is_ascii_digit() || c[j] == '.') {
                    j += 1;
                }
                out.push((Tok::Rel(c[i..j].iter().collect()), start));
                i = j;
                continue;
            }
            '-' | '0'..='9' => {
                let mut j = i + 1;
                while j < c.len() && (c[j].is_ascii_digit() || c[j] == '.') {
                    j += 1;
                }
                let s: String = c[i..j].iter().collect();
                if s == "-" || s.parse::<f64>().is_err() {
                    return Err(SyntaxError {
                        offset: start,
                        message: format!("{s:?} is not a number"),
                    });
                }
                out.push((Tok::Num(s), start));
                i = j;
                continue;
            }
            c0 if c0.is_ascii_alphabetic() || c0 == '_' => {
                if is_seg_start(&c, i) {
                    // A `]` belongs to the path only when it closes the
                    // path's own `[` (`PID-3[*]`); otherwise it ends a
                    // list the path is in (`[DG1-16.3]`).
                    let mut j = i + 3;
                    let mut open = 0usize;
                    while j < c.len()
                        && (c[j].is_ascii_alphanumeric()
                            || matches!(c[j], '-' | '[' | '*' | '.')
                            || (c[j] == ']' && open > 0))
                    {
                        match c[j] {
                            '[' => open += 1,
                            ']' => open -= 1,
                            _ => {}
                        }
                        j += 1;
                    }
                    out.push((Tok::Hl7(c[i..j].iter().collect()), start));
                    i = j;
                    continue;
                }
                let mut j = i;
                while j < c.len() && (c[j].is_ascii_alphanumeric() || c[j] == '_') {
                    j += 1;
                }
                out.push((Tok::Ident(c[i..j].iter().collect()), start));
                i = j;
                continue;
            }
            other => {
                return Err(SyntaxError {
                    offset: i,
                    message: format!("unexpected character {other:?}"),
                });
            }
        }
        i += 1;
    }
    out.push((Tok::End, c.len()));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i.min(self.toks.len() - 1)].0
    }
    fn offset(&self) -> usize {
        self.toks[self.i.min(self.toks.len() - 1)].1
    }
    fn next(&mut self) -> (Tok, usize) {
        let t = self.toks[self.i.min(self.toks.len() - 1)].clone();
        self.i += 1;
        t
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        Err(SyntaxError {
            offset: self.offset(),
            message: message.into(),
        })
    }
    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == k)
    }

    fn or(&mut self) -> Result<At<Expr>, SyntaxError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.next();
            let right = self.and()?;
            let offset = left.offset;
            left = At {
                node: Expr::Or(Box::new(left), Box::new(right)),
                offset,
            };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<At<Expr>, SyntaxError> {
        let mut left = self.not()?;
        while self.keyword("and") {
            self.next();
            let right = self.not()?;
            let offset = left.offset;
            left = At {
                node: Expr::And(Box::new(left), Box::new(right)),
                offset,
            };
        }
        Ok(left)
    }

    fn not(&mut self) -> Result<At<Expr>, SyntaxError> {
        if self.keyword("not") {
            let offset = self.offset();
            self.next();
            let inner = self.not()?;
            return Ok(At {
                node: Expr::Not(Box::new(inner)),
                offset,
            });
        }
        self.compare()
    }

    fn compare(&mut self) -> Result<At<Expr>, SyntaxError> {
        let left = self.primary()?;
        let offset = left.offset;
        match self.peek() {
            Tok::Eq | Tok::Ne => {
                let neg = *self.peek() == Tok::Ne;
                self.next();
                let right = self.primary()?;
                Ok(At {
                    node: Expr::Eq(Box::new(left), Box::new(right), neg),
                    offset,
                })
            }
            Tok::Ident(k) if k == "in" => {
                self.next();
                if *self.peek() != Tok::LBracket {
                    return self.err("expected a list after `in`, e.g. [\"I\", \"E\"]");
                }
                let At { node, .. } = self.primary()?;
                let Expr::List(items) = node else {
                    return self.err("expected a list after `in`");
                };
                Ok(At {
                    node: Expr::In(Box::new(left), items),
                    offset,
                })
            }
            _ => Ok(left),
        }
    }

    fn args(&mut self, close: Tok) -> Result<Vec<At<Expr>>, SyntaxError> {
        let mut args = Vec::new();
        if *self.peek() == close {
            self.next();
            return Ok(args);
        }
        loop {
            args.push(self.or()?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                t if *t == close => {
                    self.next();
                    return Ok(args);
                }
                Tok::End => {
                    return self.err(format!(
                        "expected `{}`",
                        if close == Tok::RParen { ")" } else { "]" }
                    ));
                }
                _ => return self.err("expected `,` or the end of the list"),
            }
        }
    }

    fn primary(&mut self) -> Result<At<Expr>, SyntaxError> {
        let (tok, offset) = self.next();
        let node = match tok {
            Tok::Str(s) => Expr::Lit(Lit::Str(s)),
            Tok::Num(n) => Expr::Lit(Lit::Num(n)),
            Tok::Hl7(p) => {
                let path: Path = p.parse().map_err(|e: hl7v2::PathError| SyntaxError {
                    offset: offset + e.column.saturating_sub(1),
                    message: format!("invalid HL7 path {p:?}: {}", e.reason),
                })?;
                Expr::Path(path, p)
            }
            Tok::Rel(r) => {
                let mut comps = Vec::new();
                for part in r.split('.').skip(1) {
                    if part.is_empty() {
                        if r == "." {
                            break;
                        }
                        return Err(SyntaxError {
                            offset,
                            message: format!("invalid relative path {r:?}: expected .1, .1.2 or ."),
                        });
                    }
                    match part.parse::<u16>() {
                        Ok(n) if n > 0 => comps.push(n),
                        _ => {
                            return Err(SyntaxError {
                                offset,
                                message: format!(
                                    "invalid relative path {r:?}: components count from 1"
                                ),
                            });
                        }
                    }
                }
                if comps.len() > 3 {
                    return Err(SyntaxError {
                        offset,
                        message: format!("{r:?}: at most field.component.subcomponent"),
                    });
                }
                Expr::Rel(comps)
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Expr::Lit(Lit::Bool(true)),
                "false" => Expr::Lit(Lit::Bool(false)),
                "null" => Expr::Lit(Lit::Null),
                "and" | "or" | "not" | "in" => {
                    return Err(SyntaxError {
                        offset,
                        message: format!("`{name}` needs a value before it"),
                    });
                }
                _ => match self.peek() {
                    Tok::LParen => {
                        self.next();
                        Expr::Call(name, self.args(Tok::RParen)?)
                    }
                    Tok::LBracket => {
                        self.next();
                        let idx = match self.next() {
                            (Tok::Star, _) => None,
                            (Tok::Num(n), at) => {
                                Some(n.parse::<u32>().ok().filter(|n| *n > 0).ok_or(
                                    SyntaxError {
                                        offset: at,
                                        message: "group indexes count from 1".into(),
                                    },
                                )?)
                            }
                            _ => return self.err("expected a number or * in brackets"),
                        };
                        if *self.peek() != Tok::RBracket {
                            return self.err("expected `]`");
                        }
                        self.next();
                        Expr::Group(name, idx)
                    }
                    _ => Expr::Name(name),
                },
            },
            Tok::LParen => {
                let inner = self.or()?;
                if *self.peek() != Tok::RParen {
                    return self.err("expected `)`");
                }
                self.next();
                return Ok(At {
                    node: inner.node,
                    offset,
                });
            }
            Tok::LBracket => Expr::List(self.args(Tok::RBracket)?),
            Tok::End => {
                return Err(SyntaxError {
                    offset,
                    message: "expected a value".into(),
                });
            }
            other => {
                return Err(SyntaxError {
                    offset,
                    message: format!("unexpected {}", describe(&other)),
                });
            }
        };
        Ok(At { node, offset })
    }
}

fn describe(t: &Tok) -> &'static str {
    match t {
        Tok::RParen => "`)`",
        Tok::RBracket => "`]`",
        Tok::Comma => "`,`",
        Tok::Eq => "`=`",
        Tok::Ne => "`!=`",
        _ => "token",
    }
}

/// Parses an expression.
pub fn parse(text: &str) -> Result<At<Expr>, SyntaxError> {
    let toks = lex(text)?;
    let mut p = Parser { toks, i: 0 };
    let e = p.or()?;
    if *p.peek() != Tok::End {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        assert!(matches!(parse("PID-5.1").unwrap().node, Expr::Path(_, _)));
        assert!(matches!(parse("OBX[*]-5").unwrap().node, Expr::Path(p, _) if p.is_multi()));
        assert!(matches!(parse(".1.2").unwrap().node, Expr::Rel(c) if c == [1, 2]));
        assert!(matches!(parse(".").unwrap().node, Expr::Rel(c) if c.is_empty()));
        assert!(
            matches!(parse("ORDER_OBSERVATION[*]").unwrap().node, Expr::Group(n, None) if n == "ORDER_OBSERVATION")
        );
        assert!(matches!(
            parse("OBSERVATION[2]").unwrap().node,
            Expr::Group(_, Some(2))
        ));
        let e = parse("lookup(AdministrativeSex, PID-8.1)").unwrap();
        let Expr::Call(name, args) = e.node else {
            panic!()
        };
        assert_eq!(name, "lookup");
        assert_eq!(args[1].offset, 26);
        assert!(matches!(
            parse("PV1-2 = \"I\" and not exists(PV1-45)").unwrap().node,
            Expr::And(_, _)
        ));
        assert!(
            matches!(parse("PV1-2 in [\"I\", \"E\"]").unwrap().node, Expr::In(_, v) if v.len() == 2)
        );
        assert!(
            matches!(parse("XPN_HumanName(PID-5[*])").unwrap().node, Expr::Call(n, _) if n == "XPN_HumanName")
        );
        assert!(matches!(parse("MSH").unwrap().node, Expr::Path(_, _)));
        // A path closing a list is not the list's `]`; its own `[n]` is its own.
        assert!(
            matches!(parse("[DG1-16.3, PID-3[*].1]").unwrap().node, Expr::List(v) if v.len() == 2)
        );
        assert!(matches!(parse("1.50").unwrap().node, Expr::Lit(Lit::Num(n)) if n == "1.50"));
        // Escapes in strings: a real newline for `join(OBX-5[*], "\n")`.
        assert!(
            matches!(parse(r#""a\nb\t\"c\\""#).unwrap().node, Expr::Lit(Lit::Str(s)) if s == "a\nb\t\"c\\")
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert_eq!(parse("date(PID-7").unwrap_err().offset, 10);
        assert_eq!(parse("date(PID-0)").unwrap_err().offset, 9);
        assert_eq!(parse("\"open").unwrap_err().offset, 0);
        assert_eq!(parse("date(PID-7) PID-8").unwrap_err().offset, 12);
        assert!(matches!(
            parse("AdministrativeSex").unwrap().node,
            Expr::Name(_)
        ));
        assert_eq!(parse(".0").unwrap_err().offset, 0);
    }
}
