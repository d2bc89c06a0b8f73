//! Mends the FHIR invariants a message's *values* break and that no single
//! mapping rule can see, because the rules do not compare numbers or dates:
//! a Period that ends before it starts (per-1), and a Range whose low is
//! above its high (rng-2: an OBX SN range sent as `^10^-^2`). HL7 carries
//! start and end dates in a dozen data types (CX.7/8, XPN.12/13, XAD.13/14,
//! XTN.13/14, IN1-12/13, NK1-8/9, ROL-5/6, ...); a sender that swaps them, or
//! types a year wrong, would otherwise fail the whole message at validation.
//!
//! The Period keeps its start; its end moves to the
//! `hl7v2-period-end-before-start` extension on the Period, as sent, and the
//! run reports it in [`Kept`] (its FHIR location, both dates, `per-1`), so
//! nothing is dropped and the rest of the message still maps. A Range keeps
//! its low the same way, its high moving to the
//! `hl7v2-range-high-below-low` extension (a Quantity). The runtime
//! calls it only when validation reports one of these (then validates
//! again), so a message without one pays nothing for it. Strict runs
//! ([`super::runtime::RunOptions::strict`]) do not mend: the message fails,
//! naming the Period or Range. Rules that already guard a period of their own
//! (PV1-44/45, OBR-7/8) keep theirs; this is the net under the rest.
//!
//! It does not own other invariants (the mappings state those where they
//! apply) nor validation (`fhir::validate`), which runs after it.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::OnceLock;

use fhir::schema::{Schema, Slot};
use fhir::tree::{Json, Member, Object};

use super::runtime::Kept;

/// Where the end of a Period that ends before it starts is kept.
pub const END_BEFORE_START_EXTENSION: &str =
    "http://caduceus.dev/fhir/StructureDefinition/hl7v2-period-end-before-start";

/// Where the high of a Range whose low is above it is kept.
pub const HIGH_BELOW_LOW_EXTENSION: &str =
    "http://caduceus.dev/fhir/StructureDefinition/hl7v2-range-high-below-low";

/// The schema places of the members this module writes.
struct Places {
    period_extension: Slot,
    range_extension: Slot,
    url: Slot,
    value: Slot,
    quantity: Slot,
}

fn places() -> &'static Places {
    static P: OnceLock<Places> = OnceLock::new();
    P.get_or_init(|| {
        let schema = Schema::r4();
        let at = |def: &str, name: &str| {
            schema
                .root(def)
                .and_then(|n| schema.slot(n, name))
                .map_or(Slot::UNKNOWN, |(p, _, _)| p)
        };
        Places {
            period_extension: at("Period", "extension"),
            range_extension: at("Range", "extension"),
            url: at("Extension", "url"),
            value: at("Extension", "valueDateTime"),
            quantity: at("Extension", "valueQuantity"),
        }
    })
}

/// Mends every Period and Range under `v` (located at `at`, e.g. `Bundle`),
/// appending what it moved to `kept`. The runtime calls it only when
/// validation has found a per-1 or rng-2 error, so a Bundle with none pays
/// nothing for it.
pub fn reversed_bounds(v: &mut Json<'_>, at: &mut String, kept: &mut Vec<Kept>) {
    match v {
        Json::Object(o) => {
            for m in &mut o.members {
                let len = at.len();
                at.push('.');
                at.push_str(&m.key);
                if let Json::Object(p) = &mut m.value {
                    if is_period(&m.key) {
                        period(p, at, kept);
                    } else if is_range(&m.key) {
                        range(p, at, kept);
                    }
                }
                reversed_bounds(&mut m.value, at, kept);
                at.truncate(len);
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = at.len();
                let _ = write!(at, "[{i}]");
                reversed_bounds(item, at, kept);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// Whether `issue` is one this module mends: `fhir::validate` ends its
/// per-1 and rng-2 messages so (the integration tests of a reversed period
/// and a reversed range fail if that text changes).
pub fn is_mendable(issue: &fhir::validate::Issue) -> bool {
    issue.message.ends_with("(per-1)") || issue.message.ends_with("(rng-2)")
}

/// The Ranges a mapping writes: `valueRange` (Observation, its components,
/// extensions) and R4's other `...Range` choices (`onsetRange`); not
/// `referenceRange`, a backbone element of its own.
fn is_range(key: &str) -> bool {
    key.ends_with("Range") && key != "referenceRange"
}

fn bound(r: &Object<'_>, key: &str) -> Option<f64> {
    r.get(key)?.get("value")?.as_number()?.parse().ok()
}

fn range(r: &mut Object<'_>, at: &str, kept: &mut Vec<Kept>) {
    let (Some(low), Some(high)) = (bound(r, "low"), bound(r, "high")) else {
        return;
    };
    if low <= high {
        return;
    }
    let reason = format!(
        "the range's low ({low}) is above its high ({high}): the low stands, the high is kept in the {HIGH_BELOW_LOW_EXTENSION} extension"
    );
    RANGE_HIGH.apply(r, at, reason, kept);
}

/// One mend: the bound `key` of a Period or Range moves into an extension
/// on it (`url`, the bound as a `valueDateTime` or `valueQuantity`), and
/// the run reports it under `rule`.
struct Move {
    key: &'static str,
    on: Bounded,
    url: &'static str,
    rule: &'static str,
}

/// The data types whose bounds this module mends.
enum Bounded {
    Period,
    Range,
}

const PERIOD_END: Move = Move {
    key: "end",
    on: Bounded::Period,
    url: END_BEFORE_START_EXTENSION,
    rule: "FHIR per-1",
};

const RANGE_HIGH: Move = Move {
    key: "high",
    on: Bounded::Range,
    url: HIGH_BELOW_LOW_EXTENSION,
    rule: "FHIR rng-2",
};

impl Move {
    fn apply(&self, o: &mut Object<'_>, at: &str, reason: String, kept: &mut Vec<Kept>) {
        kept.push(Kept {
            at: at.to_string(),
            reason,
            rule: self.rule.to_string(),
        });
        let Some(i) = o.members.iter().position(|m| m.key == self.key) else {
            return;
        };
        let moved = o.members.remove(i).value;
        let places = places();
        let (extension, value) = match self.on {
            Bounded::Period => (places.period_extension, ("valueDateTime", places.value)),
            Bounded::Range => (places.range_extension, ("valueQuantity", places.quantity)),
        };
        let ext = Json::Object(Object {
            members: vec![
                Member {
                    key: "url".into(),
                    slot: places.url,
                    value: Json::str(self.url),
                },
                Member {
                    key: value.0.into(),
                    slot: value.1,
                    value: moved,
                },
            ],
        });
        match o.get_mut("extension") {
            Some(Json::Array(list)) => list.push(ext),
            _ => o.insert_slot("extension", extension, Json::Array(vec![ext])),
        }
    }
}

/// In R4 every element named `period`, and every choice ending in
/// `Period`, is a Period.
fn is_period(key: &str) -> bool {
    key == "period" || key.ends_with("Period")
}

fn ends_before_start(p: &Object<'_>) -> bool {
    matches!(
        (p.get("start"), p.get("end")),
        (Some(Json::String(start)), Some(Json::String(end)))
            if fhir::primitive::instant_order(start, end) == Some(Ordering::Greater)
    )
}

fn period(p: &mut Object<'_>, at: &str, kept: &mut Vec<Kept>) {
    if !ends_before_start(p) {
        return;
    }
    let (Some(Json::String(start)), Some(Json::String(end))) = (p.get("start"), p.get("end"))
    else {
        return;
    };
    let reason = format!(
        "the period ends ({end}) before it starts ({start}): the start stands, the end is kept in the {END_BEFORE_START_EXTENSION} extension"
    );
    PERIOD_END.apply(p, at, reason, kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mended(json: &str) -> (String, Vec<Kept>) {
        let mut tree = Json::parse(json.as_bytes()).expect("test JSON");
        let mut kept = Vec::new();
        reversed_bounds(&mut tree, &mut "Bundle".to_string(), &mut kept);
        (tree.to_json_string(), kept)
    }

    #[test]
    fn an_end_before_the_start_moves_to_an_extension_and_is_reported() {
        let (out, kept) = mended(
            r#"{"identifier":[{"value":"1","period":{"start":"1924-10-11","end":"1923-10-12"}}]}"#,
        );
        assert_eq!(
            out,
            r#"{"identifier":[{"value":"1","period":{"start":"1924-10-11","extension":[{"url":"http://caduceus.dev/fhir/StructureDefinition/hl7v2-period-end-before-start","valueDateTime":"1923-10-12"}]}}]}"#
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].at, "Bundle.identifier[0].period");
        assert!(kept[0].reason.contains("1923-10-12"), "{}", kept[0].reason);
    }

    #[test]
    fn ordered_open_and_same_instant_periods_are_left_alone() {
        for json in [
            r#"{"period":{"start":"2024-01-01","end":"2024-12-31"}}"#,
            r#"{"effectivePeriod":{"start":"2024-01-01T10:00:00+02:00","end":"2024-01-01T08:00:00Z"}}"#,
            r#"{"period":{"end":"2024-12-31"}}"#,
            r#"{"period":{"start":"2024-05","end":"2024-05-31"}}"#,
        ] {
            let (out, kept) = mended(json);
            assert_eq!(out, json);
            assert!(kept.is_empty(), "{json}: {kept:?}");
        }
    }

    #[test]
    fn a_choice_period_deep_in_a_resource_is_mended_beside_its_extensions() {
        let (out, kept) = mended(
            r#"{"entry":[{"resource":{"resourceType":"Observation","effectivePeriod":{"extension":[{"url":"x","valueString":"y"}],"start":"2024-03-02T10:00:00Z","end":"2024-03-02T09:59:00Z"}}}]}"#,
        );
        assert!(out.contains(r#""extension":[{"url":"x","valueString":"y"},{"url":"http://caduceus.dev/fhir/StructureDefinition/hl7v2-period-end-before-start","valueDateTime":"2024-03-02T09:59:00Z"}]"#), "{out}");
        assert!(!out.contains(r#""end""#), "{out}");
        assert_eq!(kept[0].at, "Bundle.entry[0].resource.effectivePeriod");
    }

    #[test]
    fn a_range_whose_low_is_above_its_high_keeps_the_low() {
        let (out, kept) = mended(
            r#"{"valueRange":{"low":{"value":10},"high":{"value":2}},"referenceRange":[{"low":{"value":9},"high":{"value":1}}]}"#,
        );
        assert_eq!(
            out,
            r#"{"valueRange":{"low":{"value":10},"extension":[{"url":"http://caduceus.dev/fhir/StructureDefinition/hl7v2-range-high-below-low","valueQuantity":{"value":2}}]},"referenceRange":[{"low":{"value":9},"high":{"value":1}}]}"#
        );
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].at, "Bundle.valueRange");
        assert_eq!(kept[0].rule, "FHIR rng-2");
        let (out, kept) = mended(r#"{"valueRange":{"low":{"value":1},"high":{"value":1.5}}}"#);
        assert_eq!(
            out,
            r#"{"valueRange":{"low":{"value":1},"high":{"value":1.5}}}"#
        );
        assert!(kept.is_empty());
    }
}
