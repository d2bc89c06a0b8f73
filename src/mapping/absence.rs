//! What a rule does when the values it reads are all empty, worked out once
//! at compile time, so the runtime can pass over it without evaluating it.
//!
//! Owns the analysis only. A segment or data-type mapping is mostly rules
//! about parts a given message leaves empty (XPN has fourteen components;
//! a PID rarely fills half its fields). Each such rule, evaluated, reads its
//! empty part, finds nothing and writes nothing. Here each rule gets a
//! [`Skip`]: the fields and components it reads, and what it would report
//! had it run (read the message, wrote nothing, or a `from:` that gave
//! nothing). The runtime knows which parts of the current value hold
//! something (one pass over the value when it becomes current); when none of
//! a rule's parts does, the rule's [`Skip`] stands in for running it.
//!
//! The analysis is conservative: a rule that reads anything beyond the
//! current value's own parts (another segment, a group, a resource alias, a
//! part past 63, the whole value `.`) gets no [`Skip`] and always runs; so
//! does one that would write a constant when its inputs are empty. What a
//! skipped rule would have marked as read is a part that is empty, which the
//! unread report never names.

use super::compile::{Body, CExpr, CNode, RValue, Rule};
use super::functions::Func;
use serde_json::Value;

/// Stands in for a rule whose inputs are all empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip {
    /// Fields of the current segment it reads (bit n: field n).
    pub fields: u64,
    /// Parts of the current value it reads (bit n: component n of a field
    /// or repetition, subcomponent n of a component, field n of a segment).
    pub parts: u64,
    /// It is a `from:` that would give nothing (the block it is in is then
    /// not a result).
    pub based: bool,
    /// For a rule whose `when:` is a conjunction (`.3 = "CP" and
    /// empty(.2)`): the parts of its conjuncts that cannot hold when theirs
    /// are empty (fields, parts); any one of them all empty and the rule
    /// does not run. The conjuncts not evaluated would only have read (the
    /// unread report, which turns these off) and cannot fail.
    pub when: [(u64, u64); 3],
}

impl Skip {
    /// True when none of the parts it reads holds anything.
    #[inline]
    pub fn applies(&self, fields: u64, parts: u64) -> bool {
        self.fields & fields == 0 && self.parts & parts == 0
    }

    /// True when a conjunct of its `when:` cannot hold.
    #[inline]
    pub fn fails(&self, fields: u64, parts: u64) -> bool {
        self.when
            .iter()
            .any(|(f, p)| (f | p) != 0 && f & fields == 0 && p & parts == 0)
    }
}

/// The first test of a rule's `when:` (the leftmost conjunct), when it
/// compares a read with literal strings (`OBX-2 = "NM"`, `.3 in ["PH",
/// "CP"]`): the runtime reads that value once for a whole list of rules
/// and rules out those whose test fails without evaluating their `when:`.
/// Exact: `a and b` evaluates `a` first and stops when it fails, which is
/// all this does (a read marked once is marked).
#[derive(Clone, Debug)]
pub struct Guard {
    /// What it reads: a path or a component of the current value.
    pub key: CExpr,
    /// Which read it is, for the rules of one list (the same text, the same key).
    pub key_id: u64,
    /// The literals (trimmed, never empty) one of which a value must equal.
    pub lits: Vec<String>,
    /// `!=`: the test holds when no value equals the literal.
    pub negated: bool,
}

impl Guard {
    /// The guard of a `when:`, when its leftmost conjunct is such a test.
    fn of(when: &CExpr) -> Option<Guard> {
        let mut e = when;
        while let CNode::And(a, _) = &e.node {
            e = a;
        }
        let (key, lits, negated) = match &e.node {
            CNode::Eq(a, b, neg) => match &b.node {
                CNode::Lit(Value::String(l)) => (a, vec![l.trim().to_string()], *neg),
                _ => return None,
            },
            CNode::In(a, list) => {
                let mut lits = Vec::with_capacity(list.len());
                for x in list {
                    match &x.node {
                        CNode::Lit(Value::String(l)) => lits.push(l.trim().to_string()),
                        _ => return None,
                    }
                }
                (a, lits, false)
            }
            _ => return None,
        };
        let key_id = match &key.node {
            CNode::Path(_, text) => hash(&(0u8, text)),
            CNode::Rel(comps) if !comps.is_empty() => hash(&(1u8, comps)),
            _ => return None,
        };
        Some(Guard {
            key: (**key).clone(),
            key_id,
            lits: lits.into_iter().filter(|l| !l.is_empty()).collect(),
            negated,
        })
    }

    /// Whether the test holds, given the texts of its key (as `=`/`!=` and
    /// `in` compare them).
    pub fn holds(&self, texts: &[std::borrow::Cow<'_, str>]) -> bool {
        let found = texts
            .iter()
            .any(|t| self.lits.iter().any(|l| l.as_str() == t.as_ref()));
        found != self.negated
    }
}

fn hash<T: std::hash::Hash>(t: &T) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<rustc_hash::FxHasher>::default().hash_one(t)
}

/// What an expression reads, when that is only parts of the current value.
#[derive(Clone, Copy, Default)]
struct Reads {
    fields: u64,
    parts: u64,
}

impl Reads {
    fn or(self, o: Reads) -> Reads {
        Reads {
            fields: self.fields | o.fields,
            parts: self.parts | o.parts,
        }
    }
}

/// How an expression comes out when everything it reads is empty.
#[derive(Clone, Copy)]
struct Empty {
    /// It gives no values.
    nothing: bool,
    /// As a condition, it does not hold (nothing, or `false`).
    falsy: bool,
    /// As a condition, it holds (`empty(.1)`, `not exists(.1)`).
    truthy: bool,
}

const NOTHING: Empty = Empty {
    nothing: true,
    falsy: true,
    truthy: false,
};
const UNKNOWN: Empty = Empty {
    nothing: false,
    falsy: false,
    truthy: false,
};
const FALSE: Empty = Empty {
    nothing: false,
    falsy: true,
    truthy: false,
};
const TRUE: Empty = Empty {
    nothing: false,
    falsy: false,
    truthy: true,
};

fn bit(n: u16) -> Option<u64> {
    (1..64).contains(&n).then(|| 1u64 << n)
}

/// The analysis of one mapping: `source` is the segment id a segment
/// mapping reads (its paths to that segment read the current one).
struct Analysis<'a> {
    source: Option<&'a str>,
}

impl Analysis<'_> {
    /// What `e` reads (`None`: something beyond the current value's parts)
    /// and how it comes out when that is empty.
    fn expr(&self, e: &CExpr) -> Option<(Reads, Empty)> {
        Some(match &e.node {
            CNode::Lit(Value::Null) => (Reads::default(), NOTHING),
            CNode::Lit(Value::String(s)) if s.trim().is_empty() => (Reads::default(), NOTHING),
            CNode::Lit(Value::Bool(false)) => (Reads::default(), FALSE),
            CNode::Lit(_) => (Reads::default(), UNKNOWN),
            CNode::Rel(comps) => {
                let first = *comps.first()?;
                (
                    Reads {
                        fields: 0,
                        parts: bit(first)?,
                    },
                    NOTHING,
                )
            }
            CNode::Path(p, _) => {
                let source = self.source?;
                if p.segment_id() != source {
                    return None;
                }
                (
                    Reads {
                        fields: bit(p.field?)?,
                        parts: 0,
                    },
                    NOTHING,
                )
            }
            CNode::Group(..) | CNode::Alias(_) => return None,
            CNode::Table(..) | CNode::Policy(_) => (Reads::default(), UNKNOWN),
            CNode::Sub(_, arg, _) => {
                let (r, a) = self.expr(arg)?;
                (r, if a.nothing { NOTHING } else { UNKNOWN })
            }
            CNode::Not(a) => {
                let (r, a) = self.expr(a)?;
                let out = if a.falsy {
                    TRUE
                } else if a.truthy {
                    FALSE
                } else {
                    UNKNOWN
                };
                (r, out)
            }
            CNode::And(a, b) => {
                let (ra, a) = self.expr(a)?;
                let (rb, b) = self.expr(b)?;
                let out = if a.falsy || b.falsy {
                    FALSE
                } else if a.truthy && b.truthy {
                    TRUE
                } else {
                    UNKNOWN
                };
                (ra.or(rb), out)
            }
            CNode::Or(a, b) => {
                let (ra, a) = self.expr(a)?;
                let (rb, b) = self.expr(b)?;
                let out = if a.falsy && b.falsy {
                    FALSE
                } else if a.truthy || b.truthy {
                    TRUE
                } else {
                    UNKNOWN
                };
                (ra.or(rb), out)
            }
            CNode::Eq(a, b, neg) => {
                let (ra, a) = self.expr(a)?;
                let (rb, b) = self.expr(b)?;
                // Nothing on either side compares equal to nothing.
                let none = a.nothing || b.nothing;
                let out = match (none, *neg) {
                    (true, false) => FALSE,
                    (true, true) => TRUE,
                    _ => UNKNOWN,
                };
                (ra.or(rb), out)
            }
            CNode::In(a, list) => {
                let (mut r, a) = self.expr(a)?;
                for x in list {
                    r = r.or(self.expr(x)?.0);
                }
                (r, if a.nothing { FALSE } else { UNKNOWN })
            }
            CNode::List(items) => {
                let mut r = Reads::default();
                let mut all = true;
                for x in items {
                    let (rx, ex) = self.expr(x)?;
                    r = r.or(rx);
                    all &= ex.nothing;
                }
                (r, if all { NOTHING } else { UNKNOWN })
            }
            CNode::Func(f, args) => {
                let mut r = Reads::default();
                let mut each = Vec::with_capacity(args.len());
                for a in args {
                    let (ra, ea) = self.expr(a)?;
                    r = r.or(ra);
                    each.push(ea);
                }
                let arg = |i: usize| each.get(i).copied().unwrap_or(NOTHING);
                let out = match f {
                    // Give nothing for nothing in their first value.
                    Func::Date
                    | Func::DateTime
                    | Func::Instant
                    | Func::Time
                    | Func::Minutes
                    | Func::Text
                    | Func::Raw
                    | Func::Lines
                    | Func::Trim
                    | Func::Upper
                    | Func::Lower
                    | Func::Join
                    | Func::Split
                    | Func::Replace
                    | Func::Substring
                    | Func::Decimal
                    | Func::Integer
                    | Func::Boolean
                    | Func::First
                    | Func::Last
                    | Func::Rest
                    | Func::Where
                    | Func::System
                    | Func::CodeSystem
                    | Func::Base64
                    | Func::HexBase64
                    | Func::Base64Data
                    | Func::Surname => {
                        if arg(0).nothing {
                            NOTHING
                        } else {
                            UNKNOWN
                        }
                    }
                    // The value is the second argument (the first is a table).
                    Func::Lookup | Func::Display | Func::Coding => {
                        if arg(1).nothing {
                            NOTHING
                        } else {
                            UNKNOWN
                        }
                    }
                    Func::After => {
                        if arg(0).nothing || arg(1).nothing {
                            NOTHING
                        } else {
                            UNKNOWN
                        }
                    }
                    // Nothing only when every argument gives nothing (a
                    // blank separator counts as nothing: the result is trimmed).
                    Func::Concat | Func::Coalesce | Func::Uuid => {
                        if each.iter().all(|e| e.nothing) {
                            NOTHING
                        } else {
                            UNKNOWN
                        }
                    }
                    Func::If => {
                        if arg(1).nothing && arg(2).nothing {
                            NOTHING
                        } else {
                            UNKNOWN
                        }
                    }
                    Func::Before => {
                        if arg(0).nothing || arg(1).nothing {
                            FALSE
                        } else {
                            UNKNOWN
                        }
                    }
                    Func::Exists | Func::Matches | Func::IsDecimal => {
                        if arg(0).nothing {
                            FALSE
                        } else {
                            UNKNOWN
                        }
                    }
                    Func::Empty => {
                        if arg(0).nothing {
                            TRUE
                        } else {
                            UNKNOWN
                        }
                    }
                    Func::Count => UNKNOWN,
                    Func::Ref | Func::Id => return None,
                };
                (r, out)
            }
        })
    }

    /// Whether evaluating `e` can fail (a date that is not one, a number
    /// that is not one, a code a table refuses): skipping it must not hide
    /// such an error.
    fn fallible(e: &CExpr) -> bool {
        let own = matches!(
            &e.node,
            CNode::Func(
                Func::Date
                    | Func::DateTime
                    | Func::Instant
                    | Func::Time
                    | Func::After
                    | Func::Decimal
                    | Func::Integer
                    | Func::Boolean
                    | Func::Lookup
                    | Func::Display
                    | Func::Coding
                    | Func::HexBase64
                    | Func::Substring,
                _
            ) | CNode::Sub(..)
        );
        own || match &e.node {
            CNode::Func(_, args) | CNode::List(args) => args.iter().any(Self::fallible),
            CNode::In(a, list) => Self::fallible(a) || list.iter().any(Self::fallible),
            CNode::Not(a) => Self::fallible(a),
            CNode::And(a, b) | CNode::Or(a, b) | CNode::Eq(a, b, _) => {
                Self::fallible(a) || Self::fallible(b)
            }
            CNode::Sub(_, a, _) => Self::fallible(a),
            _ => false,
        }
    }

    /// Sets of parts of a condition such that, any one of them all empty,
    /// the condition does not hold: each conjunct that does not hold when
    /// what it reads is empty gives one.
    fn falsy_alternatives(&self, e: &CExpr, out: &mut Vec<Reads>) {
        match &e.node {
            CNode::And(a, b) => {
                self.falsy_alternatives(a, out);
                self.falsy_alternatives(b, out);
            }
            _ => {
                if let Some((reads, x)) = self.expr(e)
                    && x.falsy
                    && reads.fields | reads.parts != 0
                {
                    out.push(reads);
                }
            }
        }
    }

    /// The conjuncts of a rule's `when:` that can each make it not hold.
    fn when_alternatives(&self, r: &Rule) -> [(u64, u64); 3] {
        let mut out = [(0, 0); 3];
        let Some(when) = &r.when else { return out };
        if Self::fallible(when) {
            return out;
        }
        let mut alts = Vec::new();
        self.falsy_alternatives(when, &mut alts);
        for (slot, a) in out.iter_mut().zip(alts) {
            *slot = (a.fields, a.parts);
        }
        out
    }

    /// What a rule reads, when skipping it is exact: when its inputs are all
    /// empty it writes nothing and reports that it read the message (and,
    /// the flag, that a `from:` in it gave nothing). `Ok(None)` for a rule
    /// of constants only (it runs: it writes them).
    fn rule(&self, r: &Rule) -> Result<Option<(Reads, bool)>, ()> {
        if let Some(each) = &r.each {
            // The rest runs once per value of `for:`: none, when it gives nothing.
            return match self.expr(each) {
                Some((reads, e)) if e.nothing => Ok(Some((reads, false))),
                _ => Err(()),
            };
        }
        if let Some(when) = &r.when {
            return match self.expr(when) {
                Some((reads, e)) if e.falsy => Ok(Some((reads, false))),
                _ => Err(()),
            };
        }
        match &*r.body {
            Body::Assign(_, RValue::Expr(e)) => match (&e.node, self.expr(e)) {
                (CNode::Lit(_), _) => Ok(None),
                (_, Some((reads, x))) if x.nothing => Ok(Some((reads, false))),
                _ => Err(()),
            },
            // An object of what it reads and of constants: with nothing
            // read, what is left is constants, which are dropped (and a
            // `from:` in it that gave nothing drops it too, but says so
            // only to the object itself).
            Body::Assign(_, RValue::Object(rules)) => {
                let mut reads = Reads::default();
                let mut read_any = false;
                for inner in rules {
                    if let Some((r, _)) = self.rule(inner)? {
                        reads = reads.or(r);
                        read_any = true;
                    }
                }
                Ok(read_any.then_some((reads, false)))
            }
            // Rules that write into this same object: each must write nothing.
            Body::Many(rules) => {
                let mut reads = Reads::default();
                let mut based = false;
                for inner in rules {
                    let (r, b) = self.rule(inner)?.ok_or(())?;
                    reads = reads.or(r);
                    based |= b;
                }
                Ok(Some((reads, based)))
            }
            Body::Merge(e) => match self.expr(e) {
                Some((reads, x)) if x.nothing => Ok(Some((reads, true))),
                _ => Err(()),
            },
        }
    }
}

/// Gives each rule (and the rules nested in its objects) its [`Skip`].
pub fn annotate(rules: &mut [Rule], source: Option<&str>) {
    let a = Analysis { source };
    annotate_with(&a, rules);
}

fn annotate_with(a: &Analysis<'_>, rules: &mut [Rule]) {
    for r in rules.iter_mut() {
        r.guard = match (&r.each, &r.when) {
            (None, Some(w)) => Guard::of(w).map(Box::new),
            _ => None,
        };
        // `for:` is evaluated before `when:`, in another scope.
        let when = if r.each.is_none() {
            a.when_alternatives(r)
        } else {
            [(0, 0); 3]
        };
        r.skip = match a.rule(r) {
            Ok(Some((reads, based))) if reads.fields | reads.parts != 0 => Some(Skip {
                fields: reads.fields,
                parts: reads.parts,
                based,
                when,
            }),
            _ if when.iter().any(|(f, p)| f | p != 0) => Some(Skip {
                // Never all empty: only a conjunct can rule it out.
                fields: u64::MAX,
                parts: u64::MAX,
                based: false,
                when,
            }),
            _ => None,
        };
        match &mut *r.body {
            Body::Assign(_, RValue::Object(inner)) | Body::Many(inner) => annotate_with(a, inner),
            _ => {}
        }
    }
}
