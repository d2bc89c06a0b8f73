//! Channel conditions (`filters:` and `reject:`), compiled once at load.
//!
//! Owns turning a [`Condition`] into a [`Rule`] with its HL7 path parsed,
//! and evaluating it against a parsed message. No string path is parsed
//! per message.

use std::path::Path as FsPath;

use hl7v2::{Message, Path};
use serde_saphyr::Spanned;

use crate::config::ConfigError;
use crate::config::channel::Condition;
use crate::store::wildcard_match;

#[derive(Clone, Debug)]
enum Test {
    Equals(String),
    OneOf(Vec<String>),
    Present(bool),
    Matches(String),
}

#[derive(Clone, Debug)]
enum Kind {
    Type(Vec<String>),
    Field(Path, Test),
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Rule {
    kind: Kind,
    negate: bool,
    reason: Option<String>,
    /// Where it was written, `file:line`.
    pub origin: String,
}

impl Rule {
    /// Compiles a condition; errors name the file, line and column.
    pub fn compile(c: &Spanned<Condition>, file: &FsPath) -> Result<Rule, ConfigError> {
        let loc = &c.referenced;
        let at = |m: String| ConfigError::at(file, loc, m);
        let cond = &c.value;
        let tests = [
            cond.equals.is_some(),
            cond.one_of.is_some(),
            cond.present.is_some(),
            cond.matches.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        let kind = match (&cond.message_type, &cond.field) {
            (Some(_), Some(_)) => {
                return Err(at(
                    "a condition has either `type` or `field`, not both".into()
                ));
            }
            (None, None) => {
                return Err(at(
                    "a condition needs `type: <pattern>` or `field: <HL7 path>`".into(),
                ));
            }
            (Some(t), None) => {
                if tests > 0 {
                    return Err(at(
                        "`equals`/`in`/`present`/`matches` go with `field`, not `type`".into(),
                    ));
                }
                let pats = t.values();
                if pats.is_empty() {
                    return Err(at("`type` needs at least one pattern, e.g. ADT^A0*".into()));
                }
                Kind::Type(pats)
            }
            (None, Some(f)) => {
                let path: Path = f
                    .parse()
                    .map_err(|e: hl7v2::PathError| at(format!("field: {e}")))?;
                if path.field.is_none() {
                    return Err(at(format!(
                        "field: {f:?} names a segment; give a field, e.g. {f}-3"
                    )));
                }
                if tests != 1 {
                    return Err(at("a field condition needs exactly one of `equals`, `in`, `present`, `matches`".into()));
                }
                let test = if let Some(v) = &cond.equals {
                    Test::Equals(v.clone())
                } else if let Some(v) = &cond.one_of {
                    Test::OneOf(v.clone())
                } else if let Some(v) = cond.present {
                    Test::Present(v)
                } else {
                    Test::Matches(cond.matches.clone().unwrap_or_default())
                };
                Kind::Field(path, test)
            }
        };
        Ok(Rule {
            kind,
            negate: cond.not,
            reason: cond.reason.clone(),
            origin: format!("{}:{}", crate::config::display_path(file), loc.line()),
        })
    }

    /// Whether the condition holds for a message.
    pub fn holds(&self, msg: &Message<'_>) -> bool {
        let raw = match &self.kind {
            Kind::Type(pats) => {
                let t = msg.message_type().to_string();
                pats.iter().any(|p| wildcard_match(p, &t))
            }
            Kind::Field(path, test) => {
                let mut texts = Vec::new();
                msg.for_each_value(path, |v| {
                    if !v.is_empty() {
                        texts.push(v.text().into_owned());
                    }
                });
                match test {
                    Test::Present(want) => texts.is_empty() != *want,
                    Test::Equals(v) => texts.iter().any(|t| t == v),
                    Test::OneOf(vs) => texts.iter().any(|t| vs.contains(t)),
                    Test::Matches(p) => texts.iter().any(|t| wildcard_match(p, t)),
                }
            }
        };
        raw != self.negate
    }

    /// The rule in words, for state reasons: its `reason`, else what it tests.
    pub fn describe(&self) -> String {
        if let Some(r) = &self.reason {
            return format!("{r} ({})", self.origin);
        }
        let what = match &self.kind {
            Kind::Type(p) => format!("type in [{}]", p.join(", ")),
            Kind::Field(path, Test::Equals(v)) => format!("{path} equals {v:?}"),
            Kind::Field(path, Test::OneOf(v)) => format!("{path} in {v:?}"),
            Kind::Field(path, Test::Present(true)) => format!("{path} present"),
            Kind::Field(path, Test::Present(false)) => format!("{path} absent"),
            Kind::Field(path, Test::Matches(p)) => format!("{path} matches {p:?}"),
        };
        let not = if self.negate { "not " } else { "" };
        format!("{not}{what} ({})", self.origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Result<Rule, ConfigError> {
        let c: Spanned<Condition> = serde_saphyr::from_str(yaml).unwrap();
        Rule::compile(&c, FsPath::new("c.yaml"))
    }

    const MSG: &[u8] = b"MSH|^~\\&|A|GHH|C|D|2024||ADT^A04|1|P|2.5\rPID|1||123~456||Doe\rOBX|1||a||x\rOBX|2||b||y\r";

    #[test]
    fn evaluates() {
        let m = Message::parse(MSG).unwrap();
        let holds = |y: &str| rule(y).unwrap().holds(&m);
        assert!(holds("type: ADT^A0*"));
        assert!(holds("type: [ORU^R01, ADT^A04]"));
        assert!(!holds("type: ORU*"));
        assert!(holds("field: PID-3.1\npresent: true"));
        assert!(holds("field: PID-2\npresent: false"));
        assert!(holds("field: MSH-11\nin: [P, T]"));
        assert!(holds("field: MSH-4\nmatches: GH*"));
        assert!(holds("field: MSH-4\nequals: XYZ\nnot: true"));
        assert!(holds("field: OBX[*]-5\nequals: y"));
        assert!(!holds("field: OBX-5\nequals: y"));
        assert!(holds("field: PID-3[*].1\nequals: \"456\""));
    }

    #[test]
    fn refuses_bad_conditions_with_locations() {
        let e = rule("field: PID-0\nequals: x").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("c.yaml:1:1: field: invalid HL7 path"),
            "{e}"
        );
        assert!(
            rule("field: PID-3")
                .unwrap_err()
                .message
                .contains("exactly one")
        );
        assert!(
            rule("type: ADT*\nequals: x")
                .unwrap_err()
                .message
                .contains("go with `field`")
        );
        assert!(
            rule("reason: x")
                .unwrap_err()
                .message
                .contains("needs `type")
        );
        assert!(
            rule("field: PID\npresent: true")
                .unwrap_err()
                .message
                .contains("names a segment")
        );
    }
}
