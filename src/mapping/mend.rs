//! Mends the one FHIR invariant a message's *values* break in many places at
//! once, and that no single mapping rule can see: a Period that ends before
//! it starts (per-1). HL7 carries start and end dates in a dozen data types
//! (CX.7/8, XPN.12/13, XAD.13/14, XTN.13/14, IN1-12/13, NK1-8/9, ROL-5/6,
//! ...); a sender that swaps them, or types a year wrong, would otherwise
//! fail the whole message at validation.
//!
//! The Period keeps its start; its end moves to the
//! `hl7v2-period-end-before-start` extension on the Period, as sent, and the
//! run reports it in [`Kept`] (its FHIR location, both dates, `per-1`), so
//! nothing is dropped and the rest of the message still maps. The runtime
//! calls it only when validation reports a per-1 error (then validates
//! again), so a message without one pays nothing for it. Strict runs
//! ([`super::runtime::RunOptions::strict`]) do not mend: the message fails,
//! naming the Period. Rules that already guard a period of their own
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

/// The schema places of the members this module writes.
struct Places {
    period_extension: Slot,
    url: Slot,
    value: Slot,
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
            url: at("Extension", "url"),
            value: at("Extension", "valueDateTime"),
        }
    })
}

/// Mends every Period under `v` (located at `at`, e.g. `Bundle`), appending
/// what it moved to `kept`. The runtime calls it only when validation has
/// found a per-1 error, so a Bundle with none pays nothing for it.
pub fn periods(v: &mut Json<'_>, at: &mut String, kept: &mut Vec<Kept>) {
    match v {
        Json::Object(o) => {
            for m in &mut o.members {
                let len = at.len();
                at.push('.');
                at.push_str(&m.key);
                if is_period(&m.key)
                    && let Json::Object(p) = &mut m.value
                {
                    period(p, at, kept);
                }
                periods(&mut m.value, at, kept);
                at.truncate(len);
            }
        }
        Json::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = at.len();
                let _ = write!(at, "[{i}]");
                periods(item, at, kept);
                at.truncate(len);
            }
        }
        _ => {}
    }
}

/// Whether `issue` is the one this module mends: `fhir::validate` ends its
/// per-1 message so (the integration test of a reversed period fails if
/// that text changes).
pub fn is_mendable(issue: &fhir::validate::Issue) -> bool {
    issue.message.ends_with("(per-1)")
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
    kept.push(Kept {
        at: at.to_string(),
        reason: format!(
            "the period ends ({end}) before it starts ({start}): the start stands, the end is kept in the {END_BEFORE_START_EXTENSION} extension"
        ),
        rule: "FHIR per-1".to_string(),
    });
    let Some(i) = p.members.iter().position(|m| m.key == "end") else {
        return;
    };
    let end = p.members.remove(i).value;
    let places = places();
    let ext = Json::Object(Object {
        members: vec![
            Member {
                key: "url".into(),
                slot: places.url,
                value: Json::str(END_BEFORE_START_EXTENSION),
            },
            Member {
                key: "valueDateTime".into(),
                slot: places.value,
                value: end,
            },
        ],
    });
    match p.get_mut("extension") {
        Some(Json::Array(list)) => list.push(ext),
        _ => p.insert_slot("extension", places.period_extension, Json::Array(vec![ext])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mended(json: &str) -> (String, Vec<Kept>) {
        let mut tree = Json::parse(json.as_bytes()).expect("test JSON");
        let mut kept = Vec::new();
        periods(&mut tree, &mut "Bundle".to_string(), &mut kept);
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
}
