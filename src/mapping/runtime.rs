//! Running compiled mappings on a message.
//!
//! Owns evaluation: HL7 paths resolved in the current segment group (then
//! its parents), values carried as collections, sub-mapping calls, the two
//! phases of a message map (first every resource gets its id, so `ref()`
//! can point forward; then each is built), the Bundle, the Z-segment
//! policy, validation of the result, and the record of which input fields
//! were read (for `map test`'s report of values no rule reads). Resource
//! ids are UUIDv5 of stable inputs; timestamps come from the message.
//!
//! The result is built as a [`fhir::tree::Json`] that borrows: text the
//! message holds without escapes and text the mapping files hold are not
//! copied, and every member carries the schema place its rule was compiled
//! to, so putting members in the definitions' order is a sort of small
//! integers and validation does not look names up again. It becomes JSON
//! text ([`Registry::run_json`], what a channel delivers) or a
//! `serde_json::Value` ([`Registry::run`], for tests and tools).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::OnceLock;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use fhir::schema::{Schema, Slot};
use fhir::tree::{Json, Member, Object};
use hl7v2::split::{Part, Split};
use hl7v2::{Index, Message, Path as Hl7Path};
use jiff::tz::TimeZone;
use serde_json::Value;
use smallvec::{SmallVec, smallvec};

use super::Registry;
use super::compile::{
    Block, BlockKind, Body, BundleType, CExpr, CNode, Kind, Mapping, Origin, RValue, Request,
    ResourceBlock, Route, RouteBy, Rule, Step, StepIndex, TargetPath, ZPolicy,
};
use super::datetime;
use super::functions::Func;
use super::structure::Grouping;
use crate::store::wildcard_match;

/// A mapping failure: where in the mapping, where in the message, what.
#[derive(Clone, Debug, thiserror::Error)]
pub struct MapError {
    /// The mapping text that failed, when known.
    pub origin: Option<Origin>,
    /// Where in the input (`PID-7 (segment 3)`), when known.
    pub at: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(o) = &self.origin {
            write!(f, "{o}: ")?;
        }
        if let Some(a) = &self.at {
            write!(f, "{a}: ")?;
        }
        f.write_str(&self.message)
    }
}

fn fail(origin: &Origin, at: Option<String>, message: impl Into<String>) -> Box<MapError> {
    Box::new(MapError {
        origin: Some(origin.clone()),
        at,
        message: message.into(),
    })
}

/// The runtime's own results: a failure is rare, so it is boxed (a result
/// is then the size of its value, and every expression returns one).
type Fallible<T> = Result<T, Box<MapError>>;

impl From<Box<MapError>> for MapError {
    fn from(b: Box<MapError>) -> MapError {
        *b
    }
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Override the mapping's Bundle type.
    pub bundle_type: Option<BundleType>,
    /// Time zone for timestamps without an offset.
    pub timezone: TimeZone,
    /// Validate the result (and fail on errors). Default true.
    pub validate: bool,
    /// Fill [`Output::unread`] (what `map test` reports). Default false.
    pub report_unread: bool,
    /// Run every rule even when what it reads is empty (see `absence`):
    /// slower, the same result; for checking that the shortcut is exact.
    /// Default false.
    pub exhaustive: bool,
    /// A message value a conversion cannot read (`date()` of `DateDemande`,
    /// `integer()` of `MX`) fails the message. Default false: the value is
    /// left out of the element it would fill, kept whole in a
    /// `hl7v2-unreadable-value` extension on the resource being made (field,
    /// value, why, which rule) and listed in [`Output::kept`], so the rest of
    /// the message still maps and nothing is lost. Strict suits a feed whose
    /// Bundles update records in place (a PUT without the value erases it).
    pub strict: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            bundle_type: None,
            timezone: TimeZone::UTC,
            validate: true,
            report_unread: false,
            exhaustive: false,
            strict: false,
        }
    }
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Output {
    /// The Bundle (or resource, for a segment mapping).
    pub value: Value,
    /// The message mapping that ran.
    pub mapping: String,
    /// Input fields with a value that no rule read and no mapping ignores,
    /// e.g. `PID-10 (segment 3)` (when [`RunOptions::report_unread`]).
    pub unread: Vec<String>,
    /// Message values no conversion could read, kept as extensions instead
    /// (see [`RunOptions::strict`]); shown as `PID-25 (segment 3): "MX" is
    /// not a whole number (mappings/segments/PID_Patient.yaml:167:27)`.
    pub kept: Vec<Kept>,
}

/// A run's result as JSON text ([`Registry::run_json`]).
#[derive(Clone, Debug)]
pub struct JsonOutput {
    /// The Bundle (or resource) as JSON text.
    pub json: String,
    /// Values no conversion could read, kept as extensions (see [`Output::kept`]).
    pub kept: Vec<Kept>,
}

#[derive(Clone, Debug)]
enum Val<'m> {
    Hl7 { v: Part, seg: usize, field: u16 },
    Seg(usize),
    Group(usize),
    Text(Cow<'m, str>),
    Bool(bool),
    Num(Cow<'m, str>),
    Json(Json<'m>),
}

/// Segment indexes a path picks: most pick one, kept inline.
type SegIdx = SmallVec<[usize; 4]>;

/// The texts of a value, as a condition compares them.
type Texts<'m> = SmallVec<[Cow<'m, str>; 2]>;

/// Values of an expression: most are one, kept inline.
type Vals<'m> = SmallVec<[Val<'m>; 1]>;

#[derive(Clone, Debug)]
struct Scope<'m> {
    group: usize,
    current: Option<Val<'m>>,
    frame: usize,
    /// The segment a segment mapping reads (its paths to that segment
    /// read the current one), inherited by the scopes of its `for:`.
    source: Option<&'m str>,
    /// Which fields of the current segment hold a value, when it is the
    /// mapping's source (else all bits: nothing is skipped on fields).
    fields: u64,
    /// Which parts (`.n`) of the current value hold a value.
    parts: u64,
}

impl<'m> Scope<'m> {
    /// A scope whose rules are never skipped (no current value, or one the
    /// rules run in do not read by parts).
    fn plain(group: usize, current: Option<Val<'m>>, frame: usize) -> Scope<'m> {
        Scope {
            group,
            current,
            frame,
            source: None,
            fields: u64::MAX,
            parts: u64::MAX,
        }
    }
}

#[derive(Default)]
struct Frame {
    parent: Option<usize>,
    children: Vec<usize>,
    aliases: HashMap<String, Vec<String>>,
    /// The segment group a nested block goes through (`ORDER`), if any.
    group: String,
}

/// A resource made from a message, before it goes into the Bundle.
struct Made<'m> {
    alias: &'m str,
    id: String,
    obj: Object<'m>,
    origin: &'m Origin,
    request: Request,
}

struct Instance<'m> {
    id: String,
    block: &'m super::compile::ResourceBlock,
    origin: &'m Origin,
    scope: Scope<'m>,
}

/// Schema places of the members the runtime writes itself (Bundle parts,
/// Codings, References, extensions), looked up once.
struct Places {
    bundle: [Slot; 6],
    entry: [Slot; 3],
    request: [Slot; 3],
    identifier: [Slot; 2],
    coding: [Slot; 3],
    reference: Slot,
    extension: [Slot; 2],
    /// `Extension.extension` (a complex extension's parts).
    extension_extension: Slot,
}

fn places() -> &'static Places {
    static P: OnceLock<Places> = OnceLock::new();
    P.get_or_init(|| {
        let schema = Schema::r4();
        let at = |node: Option<fhir::schema::Node<'static>>, name: &str| -> Slot {
            node.and_then(|n| schema.slot(n, name))
                .map_or(Slot::UNKNOWN, |(p, _, _)| p)
        };
        let bundle = schema.root("Bundle");
        let entry = bundle.and_then(|b| schema.node_at(b.def, "Bundle.entry"));
        let request = bundle.and_then(|b| schema.node_at(b.def, "Bundle.entry.request"));
        let identifier = schema.root("Identifier");
        let coding = schema.root("Coding");
        let extension = schema.root("Extension");
        Places {
            bundle: [
                "resourceType",
                "id",
                "identifier",
                "type",
                "timestamp",
                "entry",
            ]
            .map(|n| {
                if n == "resourceType" {
                    Slot::RESOURCE_TYPE
                } else {
                    at(bundle, n)
                }
            }),
            entry: ["fullUrl", "resource", "request"].map(|n| at(entry, n)),
            request: ["method", "url", "ifNoneExist"].map(|n| at(request, n)),
            identifier: ["system", "value"].map(|n| at(identifier, n)),
            coding: ["system", "code", "display"].map(|n| at(coding, n)),
            reference: at(schema.root("Reference"), "reference"),
            extension: ["url", "valueString"].map(|n| at(extension, n)),
            extension_extension: at(extension, "extension"),
        }
    })
}

/// The place of a member of a resource (`id`, `extension`).
fn resource_place(resource: &str, name: &str) -> Slot {
    let schema = Schema::r4();
    schema
        .root(resource)
        .and_then(|n| schema.slot(n, name))
        .map_or(Slot::UNKNOWN, |(p, _, _)| p)
}

/// Appends extensions to a resource's own `extension` list.
fn add_extensions<'m>(obj: &mut Object<'m>, resource: &str, exts: Vec<Json<'m>>) {
    if exts.is_empty() {
        return;
    }
    match obj.get_mut("extension") {
        Some(Json::Array(a)) => a.extend(exts),
        _ => obj.insert_slot(
            "extension",
            resource_place(resource, "extension"),
            Json::Array(exts),
        ),
    }
}

/// Appends extensions to a made resource (its type read from itself).
fn add_own_extensions<'m>(obj: &mut Object<'m>, exts: Vec<Json<'m>>) {
    let rt = obj
        .get("resourceType")
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    add_extensions(obj, &rt, exts);
}

fn member<'m>(key: &'static str, place: Slot, value: Json<'m>) -> Member<'m> {
    Member {
        key: Cow::Borrowed(key),
        slot: place,
        value,
    }
}

fn text_json<'m>(s: impl Into<Cow<'m, str>>) -> Json<'m> {
    Json::String(s.into())
}

const Z_EXTENSION: &str = "http://caduceus.dev/fhir/StructureDefinition/hl7v2-segment";
/// A message value no conversion could read, kept on the resource it was for.
const UNREADABLE_EXTENSION: &str =
    "http://caduceus.dev/fhir/StructureDefinition/hl7v2-unreadable-value";

/// A message value no conversion could read, as a run reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Where: `PID-25 (segment 3)`.
    pub at: String,
    /// Why, the value quoted: `"MX" is not a whole number` (PHI: not for logs).
    pub reason: String,
    /// The rule that tried: `mappings/segments/PID_Patient.yaml:167:27`.
    pub rule: String,
}

impl std::fmt::Display for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.at, self.reason, self.rule)
    }
}

/// A message value a conversion could not read (not [`RunOptions::strict`]).
#[derive(Clone, Debug)]
struct Unreadable {
    /// Segment and field.
    seg: usize,
    field: u16,
    /// The value as sent.
    value: String,
    /// Why it could not be read.
    reason: String,
    /// The rule that tried.
    origin: Origin,
}
const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6ba7b811_9dad_11d1_80b4_00c04fd430c8);

/// Each segment's id as three bytes (a shorter id padded with spaces,
/// which no id read from a path holds).
fn segment_ids(msg: &Message<'_>) -> Vec<[u8; 3]> {
    msg.segments()
        .map(|s| {
            let mut id = [b' '; 3];
            let b = s.id_bytes();
            id[..b.len()].copy_from_slice(b);
            id
        })
        .collect()
}

/// A deterministic id from parts: the UUIDv5 (RFC 9562: SHA-1 of the
/// namespace and the name) of the parts joined with `|`. Hashed with
/// aws-lc's SHA-1 (several times faster than the `uuid` crate's own on
/// these short names) from a stack buffer; the same ids as
/// `uuid::Uuid::new_v5` (a unit test holds them to it).
pub fn uuid5(parts: &[&str]) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(NAMESPACE.as_bytes());
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            ctx.update(b"|");
        }
        ctx.update(p.as_bytes());
    }
    let digest = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    let id = uuid::Builder::from_sha1_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    id.hyphenated().encode_lower(&mut buf).to_string()
}

struct Env<'m> {
    reg: &'m Registry,
    msg: &'m Message<'m>,
    grouping: Grouping,
    tz: TimeZone,
    read: RefCell<FieldSet>,
    ignored: RefCell<FieldSet>,
    /// Segments a segment mapping ran on (read, even when every rule that
    /// reads them stood aside because what it reads is empty).
    touched: RefCell<Vec<bool>>,
    /// Which fields of each segment hold a value, once known.
    present: RefCell<Vec<Option<u64>>>,
    /// [`RunOptions::exhaustive`].
    exhaustive: bool,
    /// Each segment's id, as three bytes (compared by value, not as slices).
    ids: Vec<[u8; 3]>,
    frames: RefCell<Vec<Frame>>,
    depth: RefCell<usize>,
    key: String,
    /// The message split once into all its parts (rules read the same
    /// parts many times; finding the n-th separator anew each time was a
    /// scan per read).
    split: Split<'m>,
    /// Which repetitions rules read, for the unread report only (`None`
    /// when it is not asked for): a rule that reads `PID-17` reads the
    /// first, and a second repetition nobody reads is reported.
    reps: Option<RefCell<RepReads>>,
    /// What was read but not used, for the unread report: segments the
    /// structure knows that were kept whole as extensions (no rule reads
    /// them where they stand; field 0), and a field whose value could not be
    /// used (an MSH-7 that is no date/time gives no Bundle.timestamp).
    unused: RefCell<Vec<(usize, u16)>>,
    /// [`RunOptions::strict`].
    strict: bool,
    /// Values no conversion could read, in the order met (not strict).
    unreadable: RefCell<Vec<Unreadable>>,
    /// Where each (segment, field, value) is in `unreadable` (a message of
    /// thousands of bad values must not be quadratic).
    unreadable_seen: RefCell<HashMap<(usize, u16, String), usize>>,
    /// How many values phase 1 (ids, conditions) noted, once it is over.
    planned: std::cell::Cell<Option<usize>>,
    /// Values phase 1 noted that a resource's own rules met again: kept on
    /// that resource, not on the first one.
    moved: RefCell<HashSet<usize>>,
}

/// Repetitions read: every one of a field (`[*]`), or one by number.
#[derive(Debug, Default)]
struct RepReads {
    all: HashSet<(usize, u16)>,
    nth: HashSet<(usize, u16, u16)>,
}

/// A set of (segment, field) places: a bitmap per segment for the first
/// 256 fields (no hashing on the hot path), a set for the rest.
#[derive(Clone, Debug, Default)]
struct FieldSet {
    bits: Vec<[u64; 4]>,
    extra: HashSet<(usize, u16)>,
}

impl FieldSet {
    fn new(segments: usize) -> FieldSet {
        FieldSet {
            bits: vec![[0; 4]; segments],
            extra: HashSet::default(),
        }
    }

    fn insert(&mut self, seg: usize, field: u16) {
        match self.bits.get_mut(seg) {
            Some(b) if field < 256 => b[usize::from(field / 64)] |= 1 << (field % 64),
            _ => {
                self.extra.insert((seg, field));
            }
        }
    }

    fn contains(&self, seg: usize, field: u16) -> bool {
        match self.bits.get(seg) {
            Some(b) if field < 256 => b[usize::from(field / 64)] & (1 << (field % 64)) != 0,
            _ => self.extra.contains(&(seg, field)),
        }
    }

    /// Any field of the segment (or the segment itself).
    fn any_in(&self, seg: usize) -> bool {
        self.bits
            .get(seg)
            .is_some_and(|b| b.iter().any(|w| *w != 0))
            || self.extra.iter().any(|(s, _)| *s == seg)
    }
}

/// Where a value came from, formatted only when an error needs it.
type Place = Option<(usize, u16)>;

fn loc(msg: &Message<'_>, seg: usize, field: u16) -> String {
    let id = msg
        .segment_at(seg)
        .map(|s| s.id().into_owned())
        .unwrap_or_default();
    if field == 0 {
        format!("{id} (segment {})", seg + 1)
    } else {
        format!("{id}-{field} (segment {})", seg + 1)
    }
}

impl<'m> Env<'m> {
    /// The state of one run over `msg`.
    fn new(
        reg: &'m Registry,
        msg: &'m Message<'m>,
        grouping: Grouping,
        key: String,
        opts: &RunOptions,
    ) -> Env<'m> {
        let n = msg.segment_count();
        Env {
            reg,
            msg,
            grouping,
            tz: opts.timezone.clone(),
            read: RefCell::new(FieldSet::new(n)),
            ignored: RefCell::new(FieldSet::new(n)),
            touched: RefCell::new(vec![false; n]),
            present: RefCell::new(vec![None; n]),
            exhaustive: opts.exhaustive,
            ids: segment_ids(msg),
            frames: RefCell::new(vec![Frame::default()]),
            depth: RefCell::new(0),
            key,
            split: Split::new(msg),
            reps: opts.report_unread.then(RefCell::default),
            unused: RefCell::default(),
            strict: opts.strict,
            unreadable: RefCell::default(),
            unreadable_seen: RefCell::default(),
            planned: std::cell::Cell::new(None),
            moved: RefCell::default(),
        }
    }

    /// How many segments strictly between `from` and `to` are of `to`'s
    /// kind (its segment ID) and hold nothing in `field`: the blank lines
    /// `lines()` keeps between two texts. A segment of that kind whose
    /// field has a value was left out on purpose (a `where`), not blank.
    fn blank_fields_between(&self, from: usize, to: usize, field: u16) -> usize {
        let id = |seg: usize| self.split.segment_bytes(seg).and_then(|b| b.get(..3));
        let Some(kind) = id(to) else {
            return 0;
        };
        (from + 1..to)
            .filter(|&k| id(k) == Some(kind))
            .filter(|&k| {
                self.split
                    .field(k, field)
                    .is_none_or(|p| self.split.is_empty(p))
            })
            .count()
    }

    /// A value's text (HL7 values trimmed); `None` when empty, blank or not
    /// text. Borrows from the message or the value whenever it can.
    fn text<'a>(&self, v: &'a Val<'m>) -> Option<Cow<'a, str>> {
        fn trimmed(c: Cow<'_, str>) -> Cow<'_, str> {
            match c {
                Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
                Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
            }
        }
        let s = match v {
            Val::Hl7 { v, .. } => trimmed(self.split.text(*v)),
            // Text a mapping wrote (a literal, a function's result) is taken
            // as written: `concat(.1, ", ", .2)` keeps its space. The value
            // written into FHIR is trimmed at the end (`to_json`).
            Val::Text(s) if s.trim().is_empty() => Cow::Borrowed(""),
            Val::Text(s) => Cow::Borrowed(s.as_ref()),
            Val::Num(s) => Cow::Borrowed(s.trim()),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            Val::Json(Json::String(s)) => Cow::Borrowed(s.as_ref()),
            Val::Json(Json::Number(n)) => Cow::Borrowed(n.as_ref()),
            Val::Seg(_) | Val::Group(_) | Val::Json(_) => return None,
        };
        if s.is_empty() { None } else { Some(s) }
    }

    fn place(v: &Val<'m>) -> Place {
        match v {
            Val::Hl7 { seg, field, .. } => Some((*seg, *field)),
            Val::Seg(i) => Some((*i, 0)),
            _ => None,
        }
    }

    fn at(&self, place: Place) -> Option<String> {
        place.map(|(s, f)| loc(self.msg, s, f))
    }

    /// Notes a value no conversion could read (once: a rule run again on
    /// the same value, as ids are in both phases, notes it once).
    fn keep_unreadable(&self, u: Unreadable) {
        let key = (u.seg, u.field, u.value.clone());
        let mut seen = self.unreadable_seen.borrow_mut();
        let mut all = self.unreadable.borrow_mut();
        match seen.get(&key).copied() {
            None => {
                seen.insert(key, all.len());
                all.push(u);
            }
            // A value a condition of phase 1 met first, met again by the
            // rules of the resource being made: it belongs to that one.
            Some(i) if self.planned.get().is_some_and(|p| i < p) => {
                if self.moved.borrow_mut().insert(i) {
                    seen.insert(key, all.len());
                    all.push(u);
                }
            }
            Some(_) => {}
        }
    }

    /// The `hl7v2-unreadable-value` extensions for the values noted in `range`.
    fn unreadable_extensions(&self, range: std::ops::Range<usize>) -> Vec<Json<'static>> {
        let [url, value] = places().extension;
        let all = self.unreadable.borrow();
        let moved = self.moved.borrow();
        let end = range.end.min(all.len());
        let start = range.start.min(end);
        all.get(start..end)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(k, _)| !moved.contains(&(start + k)))
            .map(|(_, u)| u)
            .map(|u| {
                let part = |name: &'static str, text: String| {
                    Json::Object(Object {
                        members: vec![
                            member("url", url, Json::str(name)),
                            member(
                                "valueString",
                                value,
                                Json::String(fhir_spaces(Cow::Owned(text))),
                            ),
                        ],
                    })
                };
                Json::Object(Object {
                    members: vec![
                        member(
                            "extension",
                            places().extension_extension,
                            Json::Array(vec![
                                part("field", loc(self.msg, u.seg, u.field)),
                                part("value", u.value.clone()),
                                part("reason", u.reason.clone()),
                                part("rule", u.origin.to_string()),
                            ]),
                        ),
                        member("url", url, Json::str(UNREADABLE_EXTENSION)),
                    ],
                })
            })
            .collect()
    }

    /// Each value no conversion could read: where, why, which rule.
    fn kept(&self) -> Vec<Kept> {
        let moved = self.moved.borrow();
        self.unreadable
            .borrow()
            .iter()
            .enumerate()
            .filter(|(i, _)| !moved.contains(i))
            .map(|(_, u)| Kept {
                at: loc(self.msg, u.seg, u.field),
                reason: u.reason.clone(),
                rule: u.origin.to_string(),
            })
            .collect()
    }

    /// The scope of rules run on `current` (a mapping's argument, a `for:`
    /// value): which of its fields and parts hold something, for the rules
    /// that stand aside when theirs are empty (see `absence`).
    fn scope(
        &self,
        group: usize,
        current: Val<'m>,
        frame: usize,
        source: Option<&'m str>,
    ) -> Scope<'m> {
        let of_source = |i: usize| -> u64 {
            match self.msg.segment_at(i) {
                Some(seg) if source.is_some_and(|s| s.as_bytes() == seg.id_bytes()) => {
                    self.fields_present(i)
                }
                _ => u64::MAX,
            }
        };
        let (fields, parts) = match &current {
            Val::Seg(i) => (of_source(*i), self.fields_present(*i)),
            Val::Hl7 { v, seg, .. } => (of_source(*seg), self.split.parts_present(*v)),
            _ => (u64::MAX, u64::MAX),
        };
        Scope {
            group,
            current: Some(current),
            frame,
            source,
            fields,
            parts,
        }
    }

    /// Which fields of segment `i` hold a value, worked out once per segment.
    fn fields_present(&self, i: usize) -> u64 {
        let mut cache = self.present.borrow_mut();
        match cache.get(i) {
            Some(Some(bits)) => *bits,
            Some(None) => {
                let bits = self.split.fields_present(i);
                cache[i] = Some(bits);
                bits
            }
            None => u64::MAX,
        }
    }

    fn mark(&self, seg: usize, field: u16) {
        self.read.borrow_mut().insert(seg, field);
    }

    /// Segments with `id` visible from `group`. In a group whose structure
    /// places that segment in the group itself, those directly in it (an
    /// order's NTEs, not its observations' NTEs); otherwise every one in the
    /// group, nested groups included (an MDM's OBX; from the message itself,
    /// every such segment); when the group's structure does not allow that
    /// segment at all (PID seen from an OBSERVATION group), those of the
    /// enclosing groups.
    fn segments(&self, group: usize, id: &[u8; 3]) -> SegIdx {
        let id_str = std::str::from_utf8(id).unwrap_or("");
        let mut g = Some(group);
        while let Some(gi) = g {
            let inst = &self.grouping.insts[gi];
            let direct =
                inst.parent.is_some() && inst.direct.as_ref().is_some_and(|d| d.contains(id_str));
            let in_child = |i: usize| {
                direct
                    && inst.children.iter().any(|c| {
                        let c = &self.grouping.insts[*c];
                        (c.start..c.end).contains(&i)
                    })
            };
            let found: SegIdx = (inst.start..inst.end)
                .filter(|i| self.ids.get(*i) == Some(id))
                .filter(|i| !in_child(*i))
                .collect();
            if !found.is_empty() {
                return found;
            }
            if inst.allows.as_ref().is_some_and(|a| a.contains(id_str)) {
                return SegIdx::new();
            }
            g = inst.parent;
        }
        SegIdx::new()
    }

    fn path(&self, sc: &Scope<'m>, p: &Hl7Path) -> Vals<'m> {
        let mut out = Vals::new();
        self.path_each(sc, p, &mut |v| out.push(v));
        out
    }

    /// The values of a path, each handed to `f` as it is found (reading,
    /// and marking as read, exactly what [`Env::path`] does).
    fn path_each(&self, sc: &Scope<'m>, p: &Hl7Path, f: &mut dyn FnMut(Val<'m>)) {
        // Inside a segment, or a value of one, a path to that segment's
        // kind reads that segment (`OBX-2` in a `for: OBX[*]-5`), not every
        // one of the group.
        let segs: SegIdx = match &sc.current {
            Some(Val::Seg(i) | Val::Hl7 { seg: i, .. }) if self.ids.get(*i) == Some(&p.segment) => {
                smallvec![*i]
            }
            _ => {
                let all = self.segments(sc.group, &p.segment);
                match p.segment_index {
                    Index::All => all,
                    Index::Nth(n) => all
                        .get((n as usize).saturating_sub(1))
                        .map(|i| smallvec![*i])
                        .unwrap_or_default(),
                }
            }
        };
        let sp = &self.split;
        for si in segs {
            let Some(field_no) = p.field else {
                if si < sp.segment_count() {
                    f(Val::Seg(si));
                }
                continue;
            };
            self.mark(si, field_no);
            let Some(field) = sp.field(si, field_no) else {
                continue;
            };
            if let Some(r) = &self.reps {
                let mut r = r.borrow_mut();
                match p.repetition {
                    Some(Index::All) => {
                        r.all.insert((si, field_no));
                    }
                    Some(Index::Nth(n)) => {
                        r.nth
                            .insert((si, field_no, u16::try_from(n).unwrap_or(u16::MAX)));
                    }
                    None => {
                        r.nth.insert((si, field_no, 1));
                    }
                }
            }
            let mut one = |r: Part| {
                let v = match (p.component, p.subcomponent) {
                    (None, _) => Some(r),
                    (Some(c), None) => sp.comp(r, c),
                    (Some(c), Some(s)) => sp.comp(r, c).and_then(|x| sp.sub(x, s)),
                };
                if let Some(v) = v
                    && !sp.is_empty(v)
                    && !sp.is_null(v)
                {
                    f(Val::Hl7 {
                        v,
                        seg: si,
                        field: field_no,
                    });
                }
            };
            match p.repetition {
                Some(Index::All) => sp.reps(field).for_each(&mut one),
                Some(Index::Nth(n)) => sp.rep(field, n).into_iter().for_each(&mut one),
                None => sp.rep(field, 1).into_iter().for_each(&mut one),
            }
        }
    }

    fn rel(&self, sc: &Scope<'m>, comps: &[u16], origin: &Origin) -> Fallible<Vals<'m>> {
        if comps.is_empty() {
            return match &sc.current {
                Some(cur) => Ok(smallvec![cur.clone()]),
                None => Err(fail(
                    origin,
                    None,
                    "`.` has no value here (use it inside `for:` or a called mapping)",
                )),
            };
        }
        Ok(self.rel_one(sc, comps, origin)?.into_iter().collect())
    }

    /// A component (or field, subcomponent) below the current value: at
    /// most one value, so no list of them is built.
    fn rel_one(&self, sc: &Scope<'m>, comps: &[u16], origin: &Origin) -> Fallible<Option<Val<'m>>> {
        let Some(cur) = &sc.current else {
            return Err(fail(
                origin,
                None,
                "`.` has no value here (use it inside `for:` or a called mapping)",
            ));
        };
        let sp = &self.split;
        let v = match cur {
            Val::Seg(i) => {
                if *i >= sp.segment_count() {
                    return Ok(None);
                }
                self.mark(*i, comps[0]);
                if let Some(r) = &self.reps {
                    r.borrow_mut().nth.insert((*i, comps[0], 1));
                }
                let Some(f) = sp.field(*i, comps[0]).and_then(|f| sp.rep(f, 1)) else {
                    return Ok(None);
                };
                let v = match (comps.get(1), comps.get(2)) {
                    (Some(c), Some(s)) => sp.comp(f, *c).and_then(|x| sp.sub(x, *s)),
                    (Some(c), None) => sp.comp(f, *c),
                    _ => Some(f),
                };
                v.map(|v| Val::Hl7 {
                    v,
                    seg: *i,
                    field: comps[0],
                })
            }
            Val::Hl7 { v, seg, field } => {
                self.mark(*seg, *field);
                let inner = match v.level() {
                    hl7v2::Level::Component => sp.sub(*v, comps[0]),
                    _ => match comps.get(1) {
                        Some(s) => sp.comp(*v, comps[0]).and_then(|c| sp.sub(c, *s)),
                        None => sp.comp(*v, comps[0]),
                    },
                };
                inner.map(|v| Val::Hl7 {
                    v,
                    seg: *seg,
                    field: *field,
                })
            }
            _ => {
                return Err(fail(
                    origin,
                    None,
                    "`.1` reads a component, but `.` is not an HL7 value here",
                ));
            }
        };
        Ok(v.filter(|v| !matches!(v, Val::Hl7 { v, .. } if sp.is_empty(*v) || sp.is_null(*v))))
    }

    /// A condition, yes or no: `and`, `or`, `not`, `exists` and `empty` of
    /// a component are worked out without building their values (the
    /// common `when:`s); anything else is evaluated and taken as truthy.
    fn cond(&self, e: &'m CExpr, sc: &Scope<'m>) -> Fallible<bool> {
        Ok(match &e.node {
            CNode::And(a, b) => self.cond(a, sc)? && self.cond(b, sc)?,
            CNode::Or(a, b) => self.cond(a, sc)? || self.cond(b, sc)?,
            CNode::Not(a) => !self.cond(a, sc)?,
            CNode::Eq(a, b, neg) => self.equal(a, b, sc)? != *neg,
            CNode::In(a, list) => self.within(a, list, sc)?,
            CNode::Func(f @ (Func::Exists | Func::Empty), args) if args.len() == 1 => {
                self.present(&args[0], sc)? == (*f == Func::Exists)
            }
            _ => Self::truthy(&self.eval(e, sc)?),
        })
    }

    /// The FHIR values of a plain read (`.1.2`) or a literal string, as
    /// `eval` then `to_json` give them, without the general path; `None`
    /// for any other expression.
    fn direct(
        &self,
        e: &'m CExpr,
        sc: &Scope<'m>,
        out: &mut SmallVec<[Json<'m>; 2]>,
    ) -> Fallible<bool> {
        match &e.node {
            CNode::Rel(c) if !c.is_empty() => {
                match self.rel_one(sc, c, &e.origin)? {
                    Some(Val::Hl7 { v, .. }) => out.extend(trimmed_json(self.split.text(v))),
                    Some(other) => out.extend(self.to_json(other, "", &e.origin)?),
                    None => {}
                }
                Ok(true)
            }
            CNode::Lit(Value::String(s)) => {
                out.extend(trimmed_json(Cow::Borrowed(s.as_str())));
                Ok(true)
            }
            CNode::Path(p, _) if p.field.is_some() => {
                let sp = &self.split;
                self.path_each(sc, p, &mut |v| {
                    if let Val::Hl7 { v, .. } = v {
                        out.extend(trimmed_json(sp.text(v)));
                    }
                });
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn truthy(vals: &[Val<'m>]) -> bool {
        !vals.is_empty() && !vals.iter().all(|v| matches!(v, Val::Bool(false)))
    }

    fn eval(&self, e: &'m CExpr, sc: &Scope<'m>) -> Fallible<Vals<'m>> {
        Ok(match &e.node {
            CNode::Lit(Value::Null) => Vals::new(),
            CNode::Lit(Value::String(s)) => smallvec![Val::Text(Cow::Borrowed(s.as_str()))],
            CNode::Lit(Value::Number(n)) => smallvec![Val::Num(Cow::Borrowed(n.as_str()))],
            CNode::Lit(Value::Bool(b)) => smallvec![Val::Bool(*b)],
            CNode::Lit(v) => smallvec![Val::Json(Json::from_value(v))],
            CNode::Path(p, _) => self.path(sc, p),
            CNode::Rel(c) => self.rel(sc, c, &e.origin)?,
            CNode::Group(name, idx) => self.groups(sc, name, *idx),
            CNode::Table(..) | CNode::Alias(_) | CNode::Policy(_) => Vals::new(),
            CNode::Not(_) | CNode::And(..) | CNode::Or(..) => {
                smallvec![Val::Bool(self.cond(e, sc)?)]
            }
            CNode::Eq(a, b, neg) => smallvec![Val::Bool(self.equal(a, b, sc)? != *neg)],
            CNode::In(a, list) => smallvec![Val::Bool(self.within(a, list, sc)?)],
            CNode::List(items) => {
                let mut out = Vals::new();
                for i in items {
                    out.extend(self.eval(i, sc)?);
                }
                out
            }
            CNode::Sub(name, arg, at) => self.sub(e, name, arg, at, sc, false)?,
            CNode::Func(f, args) => self.func(*f, args, sc, &e.origin)?,
        })
    }

    /// Group instances (`ORDER[*]`, `ORDER[2]`).
    #[inline(never)]
    fn groups(&self, sc: &Scope<'m>, name: &str, idx: Option<u32>) -> Vals<'m> {
        let all = self.grouping.find(sc.group, name);
        let picked: Vec<usize> = match idx {
            None => all,
            Some(n) => all.get(n as usize - 1).copied().into_iter().collect(),
        };
        picked.into_iter().map(Val::Group).collect()
    }

    /// `a = b`: some text of `a` is a text of `b`. A literal on the right
    /// (`OBX-2 = "NM"`, the common case) is compared as it stands.
    #[inline(never)]
    fn equal(&self, a: &'m CExpr, b: &'m CExpr, sc: &Scope<'m>) -> Fallible<bool> {
        let va = self.eval(a, sc)?;
        Ok(match &b.node {
            CNode::Lit(Value::String(lit)) => {
                let lit = lit.trim();
                !lit.is_empty() && va.iter().filter_map(|v| self.text(v)).any(|x| x == lit)
            }
            _ => {
                let vb = self.eval(b, sc)?;
                let tb: SmallVec<[Cow<'_, str>; 2]> =
                    vb.iter().filter_map(|v| self.text(v)).collect();
                va.iter()
                    .filter_map(|v| self.text(v))
                    .any(|x| tb.contains(&x))
            }
        })
    }

    /// `a in [...]`: some text of `a` is one of the list's.
    #[inline(never)]
    fn within(&self, a: &'m CExpr, list: &'m [CExpr], sc: &Scope<'m>) -> Fallible<bool> {
        let va = self.eval(a, sc)?;
        let mut lits: SmallVec<[&str; 8]> = SmallVec::new();
        let mut others: Vec<Vals<'m>> = Vec::new();
        for l in list {
            match &l.node {
                CNode::Lit(Value::String(lit)) => lits.push(lit.trim()),
                _ => others.push(self.eval(l, sc)?),
            }
        }
        let set: Vec<Cow<'_, str>> = others
            .iter()
            .flat_map(|vals| vals.iter().filter_map(|v| self.text(v)))
            .collect();
        Ok(va
            .iter()
            .filter_map(|v| self.text(v))
            .any(|x| lits.iter().any(|l| !l.is_empty() && *l == x) || set.contains(&x)))
    }

    /// A call of a segment or data-type mapping, once per value of its argument.
    #[inline(never)]
    fn sub(
        &self,
        e: &'m CExpr,
        name: &str,
        arg: &'m CExpr,
        at: &std::sync::OnceLock<usize>,
        sc: &Scope<'m>,
        constants: bool,
    ) -> Fallible<Vals<'m>> {
        let args = self.eval(arg, sc)?;
        let called = match at.get() {
            Some(i) => self.reg.list.get(*i),
            None => self.reg.mappings.get(name),
        };
        let Some(m) = called else {
            return Err(fail(
                &e.origin,
                None,
                format!("mapping {name} is not loaded"),
            ));
        };
        let mut out = Vals::new();
        for a in args {
            if let Some(obj) = self.call(m, a, sc, &e.origin, constants)? {
                out.push(Val::Json(Json::Object(obj)));
            }
        }
        Ok(out)
    }

    fn call(
        &self,
        m: &'m Mapping,
        arg: Val<'m>,
        sc: &Scope<'m>,
        origin: &Origin,
        constants: bool,
    ) -> Fallible<Option<Object<'m>>> {
        let (Kind::Segment(rm) | Kind::Datatype(rm)) = &m.kind else {
            return Err(fail(
                origin,
                None,
                format!("{} is not a segment or datatype mapping", m.name),
            ));
        };
        {
            let mut d = self.depth.borrow_mut();
            *d += 1;
            if *d > 64 {
                return Err(fail(origin, None, "mappings nest more than 64 deep"));
            }
        }
        if let Val::Seg(i) = &arg
            && let Some(seg) = self.msg.segment_at(*i)
        {
            let mut ig = self.ignored.borrow_mut();
            for (sid, field) in &m.ignore {
                if seg.id_bytes() == sid.as_bytes() {
                    ig.insert(*i, *field);
                }
            }
        }
        if let Val::Seg(i) = &arg
            && let Some(t) = self.touched.borrow_mut().get_mut(*i)
        {
            *t = true;
        }
        let source = match &m.kind {
            Kind::Segment(rm) => Some(rm.source.as_str()),
            _ => None,
        };
        let inner = self.scope(sc.group, arg, sc.frame, source);
        // Room for a member per rule (at most), so a large result is not
        // moved as it grows.
        let mut obj = Object::with_capacity(rm.rules.len().min(16));
        let r = self.apply_rules(&rm.rules, &inner, &mut obj, false);
        *self.depth.borrow_mut() -= 1;
        // Constants left over when every value the mapping reads is empty
        // (a `system` with no code) are not a result, unless the caller
        // keeps them (`constants`: a resource's own `from:`).
        let wrote = r?;
        Ok(
            if obj.is_empty() || (!constants && wrote.only_leftovers()) {
                None
            } else {
                Some(obj)
            },
        )
    }

    /// An FN's surname: FN.1, or when that is empty the own prefix, own
    /// surname, partner's prefix and partner's surname (FN.2 to FN.5) that
    /// are sent, joined by spaces (Dutch senders fill only the parts).
    fn surname(&self, v: Part) -> Option<Cow<'m, str>> {
        let part = |n: u16| {
            let t = self.split.text(self.split.sub(v, n)?);
            let t = match t {
                Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
                Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
            };
            (!t.is_empty()).then_some(t)
        };
        if let Some(t) = part(1) {
            return Some(t);
        }
        let parts: Vec<Cow<'m, str>> = (2..=5).filter_map(part).collect();
        (!parts.is_empty()).then(|| Cow::Owned(parts.join(" ")))
    }

    fn texts<'a>(&self, vals: &'a [Val<'m>]) -> SmallVec<[(Cow<'a, str>, Place); 2]> {
        vals.iter()
            .filter_map(|v| self.text(v).map(|t| (t, Self::place(v))))
            .collect()
    }

    fn func(
        &self,
        f: Func,
        args: &'m [CExpr],
        sc: &Scope<'m>,
        origin: &Origin,
    ) -> Fallible<Vals<'m>> {
        let arg = |i: usize| -> Fallible<Vals<'m>> {
            match args.get(i) {
                Some(a) => self.eval(a, sc),
                None => Ok(Vals::new()),
            }
        };
        let map_text = |g: &dyn Fn(&str) -> Result<Val<'m>, String>| -> Fallible<Vals<'m>> {
            let mut out = Vals::new();
            for (t, at) in self.texts(&arg(0)?) {
                match (g(&t), at) {
                    (Ok(v), _) => out.push(v),
                    // A message value no conversion reads is kept, not
                    // failed, unless the run is strict.
                    (Err(m), Some((seg, field))) if !self.strict => {
                        self.keep_unreadable(Unreadable {
                            seg,
                            field,
                            value: t.into_owned(),
                            reason: m,
                            origin: origin.clone(),
                        });
                    }
                    (Err(m), at) => return Err(fail(origin, self.at(at), m)),
                }
            }
            Ok(out)
        };
        // A setting of a function (a separator, a pattern, a default): a
        // string is taken as written, spaces and `"\n"` included.
        let one_text = |i: usize| -> Fallible<String> {
            let vals = arg(i)?;
            Ok(match vals.first() {
                Some(Val::Text(s)) => s.to_string(),
                _ => self
                    .texts(&vals)
                    .into_iter()
                    .next()
                    .map(|(t, _)| t.into_owned())
                    .unwrap_or_default(),
            })
        };
        Ok(match f {
            Func::Date => {
                map_text(&|t| datetime::parse(t).map(|d| Val::Text(Cow::Owned(d.date()))))?
            }
            Func::DateTime => map_text(&|t| {
                datetime::parse(t).map(|d| Val::Text(Cow::Owned(d.date_time(&self.tz))))
            })?,
            Func::Instant => map_text(&|t| {
                datetime::parse(t).map(|d| Val::Text(Cow::Owned(d.instant(&self.tz))))
            })?,
            Func::Time => map_text(&|t| datetime::time(t).map(|t| Val::Text(Cow::Owned(t))))?,
            Func::Minutes => map_text(&|t| {
                Ok(
                    datetime::minutes(t).map_or(Val::Text(Cow::Borrowed("")), |m| {
                        Val::Num(Cow::Owned(m.to_string()))
                    }),
                )
            })?
            .into_iter()
            .filter(|v| !matches!(v, Val::Text(t) if t.is_empty()))
            .collect(),
            Func::After => {
                let (start, mins) = (arg(0)?, arg(1)?);
                let first = |vals: &[Val<'m>]| -> Option<(String, Place)> {
                    vals.iter()
                        .find_map(|v| self.text(v).map(|t| (t.into_owned(), Self::place(v))))
                };
                let (Some((s, _)), Some((m, at))) = (first(&start), first(&mins)) else {
                    return Ok(Vals::new());
                };
                let t = match datetime::parse(&s) {
                    Ok(t) => t,
                    // A start the message fills with something else gives no
                    // end, unless strict (the start itself is kept by the
                    // rule that reads it).
                    Err(_) if !self.strict => return Ok(Vals::new()),
                    Err(e) => return Err(fail(origin, None, e)),
                };
                // Minutes after a day (no time of day) are no time: nothing,
                // and no error.
                if !t.has_time() {
                    return Ok(Vals::new());
                }
                // SCH-9 is an NM: `30.0` is thirty minutes.
                let ended = m
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && n.abs() < 1e12)
                    .map(|n| n.round() as i64)
                    .ok_or_else(|| format!("after(): {m:?} is not a number of minutes"))
                    .and_then(|n| t.instant_after(n, &self.tz));
                match (ended, at) {
                    (Ok(e), _) => smallvec![Val::Text(Cow::Owned(e))],
                    // Minutes no calendar can add (no number, or a duration of
                    // centuries) are kept (no other rule may read them), not
                    // failed.
                    (Err(reason), Some((seg, field))) if !self.strict => {
                        self.keep_unreadable(Unreadable {
                            seg,
                            field,
                            value: m,
                            reason,
                            origin: origin.clone(),
                        });
                        Vals::new()
                    }
                    (Err(_), None) if !self.strict => Vals::new(),
                    (Err(reason), at) => return Err(fail(origin, self.at(at), reason)),
                }
            }
            Func::Text => map_text(&|t| Ok(Val::Text(Cow::Owned(t.to_string()))))?,
            Func::Raw => arg(0)?
                .iter()
                .filter_map(|v| match v {
                    Val::Hl7 { v, .. } => Some(Val::Text(self.split.display_text(*v))),
                    Val::Seg(i) => self.msg.segment_at(*i).map(|s| {
                        Val::Text(Cow::Owned(
                            self.msg
                                .charset()
                                .decode(Cow::Borrowed(s.as_bytes()))
                                .into_owned(),
                        ))
                    }),
                    other => self
                        .text(other)
                        .map(|t| Val::Text(Cow::Owned(t.into_owned()))),
                })
                .collect(),
            Func::Lines => {
                // Each field once (`OBX[*]-5` gives a value per OBX), every
                // repetition of it a line as sent, blank ones included (a
                // paragraph break in a report), none after the last text.
                // A blank field between two read ones of the same
                // segment kind (a transcription's empty OBX between
                // paragraphs) is a blank line too: paths give no value
                // for an empty field, so the gap is read here.
                let mut seen: SmallVec<[(usize, u16); 4]> = SmallVec::new();
                let mut out = Vals::new();
                let mut last: Option<(usize, u16)> = None;
                for v in arg(0)? {
                    let Val::Hl7 { seg, field, .. } = v else {
                        if let Some(t) = self.text(&v) {
                            out.push(Val::Text(Cow::Owned(t.into_owned())));
                        }
                        last = None;
                        continue;
                    };
                    if seen.contains(&(seg, field)) {
                        continue;
                    }
                    seen.push((seg, field));
                    let blanks = match last {
                        Some((prev, f)) if f == field && prev < seg => {
                            self.blank_fields_between(prev, seg, field)
                        }
                        _ => 0,
                    };
                    if blanks > 0
                        && let Some(Val::Text(t)) = out.last_mut()
                    {
                        t.to_mut().push_str(&"\n".repeat(blanks));
                    }
                    let Some(f) = self.split.field(seg, field) else {
                        continue;
                    };
                    if let Some(r) = &self.reps {
                        r.borrow_mut().all.insert((seg, field));
                    }
                    let mut lines: Vec<Cow<'m, str>> = self
                        .split
                        .reps(f)
                        .map(|r| self.split.display_text(r))
                        .collect();
                    while lines.last().is_some_and(|l| l.trim().is_empty()) {
                        lines.pop();
                    }
                    if !lines.is_empty() {
                        out.push(Val::Text(Cow::Owned(lines.join("\n"))));
                        last = Some((seg, field));
                    }
                }
                out
            }
            Func::Trim => map_text(&|t| Ok(Val::Text(Cow::Owned(t.trim().to_string()))))?,
            Func::Upper => map_text(&|t| Ok(Val::Text(Cow::Owned(t.to_uppercase()))))?,
            Func::Lower => map_text(&|t| Ok(Val::Text(Cow::Owned(t.to_lowercase()))))?,
            Func::Concat => {
                let mut s = String::new();
                for i in 0..args.len() {
                    for v in arg(i)? {
                        match &v {
                            // A separator the mapping wrote (`" "`) is kept
                            // even though it is blank.
                            Val::Text(t) => s.push_str(t),
                            other => {
                                if let Some(t) = self.text(other) {
                                    s.push_str(&t);
                                }
                            }
                        }
                    }
                }
                if s.trim().is_empty() {
                    Vals::new()
                } else {
                    smallvec![Val::Text(Cow::Owned(s))]
                }
            }
            Func::Join => {
                let sep = one_text(1)?;
                let parts: Vec<String> = self
                    .texts(&arg(0)?)
                    .into_iter()
                    .map(|(t, _)| t.into_owned())
                    .collect();
                if parts.is_empty() {
                    Vals::new()
                } else {
                    smallvec![Val::Text(Cow::Owned(parts.join(&sep)))]
                }
            }
            Func::Split => {
                let sep = one_text(1)?;
                let mut out = Vals::new();
                for (t, _) in self.texts(&arg(0)?) {
                    if sep.is_empty() {
                        out.push(Val::Text(Cow::Owned(t.into_owned())));
                    } else {
                        out.extend(
                            t.split(sep.as_str())
                                .map(|p| p.trim())
                                .filter(|p| !p.is_empty())
                                .map(|p| Val::Text(Cow::Owned(p.to_string()))),
                        );
                    }
                }
                out
            }
            Func::Replace => {
                let (from, to) = (one_text(1)?, one_text(2)?);
                map_text(&|t| {
                    Ok(Val::Text(Cow::Owned(if from.is_empty() {
                        t.to_string()
                    } else {
                        t.replace(&from, &to)
                    })))
                })?
            }
            Func::Substring => {
                let start: usize = one_text(1)?
                    .parse()
                    .map_err(|_| fail(origin, None, "substring(): the start is a whole number"))?;
                let len: Option<usize> = match args.get(2) {
                    Some(_) => Some(one_text(2)?.parse().map_err(|_| {
                        fail(origin, None, "substring(): the length is a whole number")
                    })?),
                    None => None,
                };
                map_text(&|t| {
                    let c: Vec<char> = t.chars().collect();
                    let end = len.map(|l| (start + l).min(c.len())).unwrap_or(c.len());
                    Ok(Val::Text(Cow::Owned(
                        c.get(start.min(c.len())..end)
                            .map(|s| s.iter().collect())
                            .unwrap_or_default(),
                    )))
                })?
            }
            Func::Decimal => map_text(&|t| {
                decimal_text(t)
                    .map(|n| Val::Num(Cow::Owned(n)))
                    .ok_or_else(|| format!("{t:?} is not a decimal number"))
            })?,
            Func::IsDecimal => {
                let vals = arg(0)?;
                let texts = self.texts(&vals);
                smallvec![Val::Bool(
                    !texts.is_empty() && texts.iter().all(|(t, _)| decimal_text(t).is_some())
                )]
            }
            Func::Integer => map_text(&|t| {
                let t = t.trim_start_matches('+');
                // An NM written with a zero fraction (`30.0`) is whole too.
                let whole = t
                    .split_once('.')
                    .and_then(|(i, f)| f.bytes().all(|b| b == b'0').then_some(i));
                // FHIR's integer, positiveInt and unsignedInt are 32-bit.
                let n = whole.unwrap_or(t);
                match n.parse::<i32>() {
                    Ok(i) => Ok(Val::Num(Cow::Owned(i.to_string()))),
                    Err(_) if n.parse::<i128>().is_ok() => Err(format!(
                        "{t:?} is a whole number larger than FHIR's integers hold (32 bits)"
                    )),
                    Err(_) => Err(format!("{t:?} is not a whole number")),
                }
            })?,
            Func::Boolean => map_text(&|t| match t.to_ascii_uppercase().as_str() {
                "Y" | "YES" | "T" | "TRUE" | "1" => Ok(Val::Bool(true)),
                "N" | "NO" | "F" | "FALSE" | "0" => Ok(Val::Bool(false)),
                _ => Err(format!(
                    "{t:?} is not a yes/no value (Y, N, true, false, 1, 0)"
                )),
            })?,
            Func::Lookup | Func::Display | Func::Coding => {
                let table: &'m super::vocab::Table = match args.first().map(|a| &a.node) {
                    Some(CNode::Table(_, t)) => t,
                    _ => return Err(fail(origin, None, "lookup(): no table")),
                };
                let policy = match args.get(2).map(|a| &a.node) {
                    Some(CNode::Policy(p)) => Some(*p),
                    _ => None,
                };
                let default = if args.len() > 3 {
                    Some(one_text(3)?)
                } else {
                    None
                };
                let mut out = Vals::new();
                for (t, at) in self.texts(&arg(1)?) {
                    let target = table
                        .translate_ref(&t, policy)
                        .map_err(|m| fail(origin, self.at(at), m))?;
                    let target = match (target, &default) {
                        (Some(x), _) => Some(x),
                        (None, Some(d)) => Some(super::vocab::TargetRef {
                            code: Cow::Owned(d.clone()),
                            display: None,
                            system: None,
                        }),
                        (None, None) => None,
                    };
                    let Some(target) = target else { continue };
                    match f {
                        Func::Lookup => out.push(Val::Text(target.code)),
                        Func::Display => {
                            if let Some(d) = target.display {
                                out.push(Val::Text(Cow::Borrowed(d)));
                            }
                        }
                        _ => {
                            let [system, code, display] = places().coding;
                            let mut c = Object::with_capacity(3);
                            if let Some(s) = target.system {
                                c.members.push(member("system", system, Json::str(s)));
                            }
                            c.members
                                .push(member("code", code, Json::String(target.code)));
                            if let Some(d) = target.display {
                                c.members.push(member("display", display, Json::str(d)));
                            }
                            out.push(Val::Json(Json::Object(c)));
                        }
                    }
                }
                out
            }
            Func::Exists => smallvec![Val::Bool(!arg(0)?.is_empty())],
            Func::Empty => smallvec![Val::Bool(arg(0)?.is_empty())],
            Func::Count => smallvec![Val::Num(Cow::Owned(arg(0)?.len().to_string()))],
            Func::First => arg(0)?.into_iter().take(1).collect(),
            Func::Rest => arg(0)?.into_iter().skip(1).collect(),
            Func::Last => arg(0)?.into_iter().next_back().into_iter().collect(),
            Func::Coalesce => {
                // Every argument is evaluated (so each counts as read); the first
                // with a value wins.
                let mut found = None;
                for i in 0..args.len() {
                    let v = arg(i)?;
                    if found.is_none() && !v.is_empty() {
                        found = Some(v);
                    }
                }
                found.unwrap_or_default()
            }
            Func::If => {
                let yes = match args.first() {
                    Some(c) => self.cond(c, sc)?,
                    None => false,
                };
                if yes { arg(1)? } else { arg(2)? }
            }
            Func::Uuid => {
                let vals: SmallVec<[Vals<'m>; 4]> =
                    (0..args.len()).map(arg).collect::<Fallible<_>>()?;
                let parts: SmallVec<[Cow<'_, str>; 6]> = vals
                    .iter()
                    .flat_map(|v| v.iter())
                    .filter_map(|v| self.text(v))
                    .collect();
                if parts.is_empty() {
                    Vals::new()
                } else {
                    let refs: SmallVec<[&str; 6]> = parts.iter().map(|p| p.as_ref()).collect();
                    smallvec![Val::Text(Cow::Owned(uuid5(&refs)))]
                }
            }
            Func::Ref | Func::Id => {
                let alias = match args.first().map(|a| &a.node) {
                    Some(CNode::Alias(a)) => a.clone(),
                    _ => return Err(fail(origin, None, "ref(): no alias")),
                };
                self.resolve_alias(sc.frame, &alias)
                    .into_iter()
                    .map(|id| {
                        if f == Func::Id {
                            Val::Text(Cow::Owned(id))
                        } else {
                            Val::Json(Json::Object(Object {
                                members: vec![member(
                                    "reference",
                                    places().reference,
                                    text_json(["urn:uuid:", id.as_str()].concat()),
                                )],
                            }))
                        }
                    })
                    .collect()
            }
            Func::System => map_text(&|t| Ok(Val::Text(system_of(t, false))))?,
            Func::CodeSystem => map_text(&|t| Ok(Val::Text(system_of(t, true))))?,
            Func::Base64 => {
                let parts: Vec<String> = self
                    .texts(&arg(0)?)
                    .into_iter()
                    .map(|(t, _)| t.into_owned())
                    .collect();
                if parts.is_empty() {
                    Vals::new()
                } else {
                    smallvec![Val::Text(Cow::Owned(base64(parts.join("\n").as_bytes())))]
                }
            }
            Func::HexBase64 => map_text(&|t| {
                let hex: Vec<u8> = t.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
                let digit = |b: u8| (b as char).to_digit(16);
                if !hex.len().is_multiple_of(2) || hex.iter().any(|b| digit(*b).is_none()) {
                    return Err("the data is not hexadecimal (ED.4 says Hex)".to_string());
                }
                let bytes: Vec<u8> = hex
                    .chunks(2)
                    .map(|p| (digit(p[0]).unwrap_or(0) * 16 + digit(p[1]).unwrap_or(0)) as u8)
                    .collect();
                Ok(Val::Text(Cow::Owned(base64(&bytes))))
            })?,
            Func::Where => {
                let mut out = Vals::new();
                for v in arg(0)? {
                    let each = Scope::plain(
                        if let Val::Group(g) = v { g } else { sc.group },
                        Some(v.clone()),
                        sc.frame,
                    );
                    let test = args.get(1).map(|t| self.eval(t, &each)).transpose()?;
                    if test.is_some_and(|t| Self::truthy(&t)) {
                        out.push(v);
                    }
                }
                out
            }
            Func::Surname => arg(0)?
                .iter()
                .filter_map(|v| match v {
                    Val::Hl7 { v, .. } => self.surname(*v).map(Val::Text),
                    other => self
                        .text(other)
                        .map(|t| Val::Text(Cow::Owned(t.into_owned()))),
                })
                .collect(),
            Func::Base64Data => self
                .texts(&arg(0)?)
                .into_iter()
                .filter_map(|(t, _)| base64_data(&t).map(|b| Val::Text(Cow::Owned(b))))
                .collect(),
            Func::Before => {
                let instant = |i: usize| -> Fallible<Option<jiff::Timestamp>> {
                    Ok(self
                        .texts(&arg(i)?)
                        .into_iter()
                        .next()
                        .and_then(|(t, _)| datetime::parse(&t).ok())
                        .and_then(|t| t.instant(&self.tz).parse::<jiff::Timestamp>().ok()))
                };
                let (a, b) = (instant(0)?, instant(1)?);
                smallvec![Val::Bool(matches!((a, b), (Some(a), Some(b)) if a < b))]
            }
            Func::Matches => {
                let pat = one_text(1)?;
                smallvec![Val::Bool(
                    self.texts(&arg(0)?)
                        .iter()
                        .any(|(t, _)| wildcard_match(&pat, t)),
                )]
            }
        })
    }

    /// The ids made under an alias, each once (two blocks that make the same
    /// resource, e.g. a role sent twice, are one reference, not two).
    fn resolve_alias(&self, frame: usize, alias: &str) -> Vec<String> {
        let frames = self.frames.borrow();
        let mut f = Some(frame);
        while let Some(fi) = f {
            if let Some(ids) = frames[fi].aliases.get(alias) {
                if ids.len() < 2 {
                    return ids.clone();
                }
                let mut seen: HashSet<&str> =
                    HashSet::with_capacity_and_hasher(ids.len(), Default::default());
                return ids
                    .iter()
                    .filter(|id| seen.insert(id.as_str()))
                    .cloned()
                    .collect();
            }
            f = frames[fi].parent;
        }
        // Not in scope: the ones made below this frame (a report's results),
        // else below the nearest enclosing frame that has any (an order's
        // coverage, made in the INSURANCE group beside the ORDER group).
        // Never from another instance of a group this one is in: a charge in
        // the second FINANCIAL group is not for the first one's procedure.
        let mut f = Some(frame);
        let mut came_from: Option<usize> = None;
        while let Some(fi) = f {
            // In message order (a report's results as its OBXs come), each
            // resource once: the frames depth first, children in order.
            let mut out: Vec<String> = Vec::new();
            let mut seen: HashSet<&str> = HashSet::default();
            let mut stack: Vec<usize> = frames[fi]
                .children
                .iter()
                .rev()
                .copied()
                .filter(|c| {
                    came_from.is_none_or(|from| {
                        frames[from].group.is_empty() || frames[*c].group != frames[from].group
                    })
                })
                .collect();
            while let Some(c) = stack.pop() {
                if let Some(ids) = frames[c].aliases.get(alias) {
                    for id in ids {
                        if seen.insert(id.as_str()) {
                            out.push(id.clone());
                        }
                    }
                }
                stack.extend(frames[c].children.iter().rev().copied());
            }
            if !out.is_empty() {
                return out;
            }
            came_from = Some(fi);
            f = frames[fi].parent;
        }
        Vec::new()
    }

    fn to_json(&self, v: Val<'m>, code: &str, origin: &Origin) -> Fallible<Option<Json<'m>>> {
        let at = Self::place(&v);
        Ok(match v {
            Val::Json(j) => Some(j),
            Val::Bool(b) => Some(Json::Bool(b)),
            Val::Num(n)
                if matches!(
                    code,
                    "decimal" | "integer" | "positiveInt" | "unsignedInt" | ""
                ) =>
            {
                let t = n.trim();
                let negative = t.starts_with('-');
                let zero = t
                    .trim_start_matches(['-', '+'])
                    .bytes()
                    .all(|b| b == b'0' || b == b'.');
                let out_of_range = (code == "positiveInt" && (negative || zero))
                    || (code == "unsignedInt" && negative && !zero);
                if !is_json_number(t) {
                    None
                } else if out_of_range {
                    // A count the sender filled with 0 or less (SCH-9 `0`):
                    // kept, not written where FHIR wants more than that.
                    match at {
                        Some((seg, field)) if !self.strict => {
                            self.keep_unreadable(Unreadable {
                                seg,
                                field,
                                value: t.to_string(),
                                reason: format!("{t} is not a {code} (FHIR wants more)"),
                                origin: origin.clone(),
                            });
                            None
                        }
                        // A computed count (`integer(SCH-9)`): nothing
                        // to point at, and zero minutes or a rank of 0 say
                        // nothing; left out.
                        _ if !self.strict => None,
                        _ => {
                            return Err(fail(origin, self.at(at), format!("{t} is not a {code}")));
                        }
                    }
                } else if t.len() == n.len() {
                    Some(Json::Number(n))
                } else {
                    Some(Json::Number(Cow::Owned(t.to_string())))
                }
            }
            Val::Seg(_) | Val::Group(_) => {
                return Err(fail(
                    origin,
                    self.at(at),
                    "a segment or group cannot be written into FHIR; pick a field",
                ));
            }
            Val::Text(s) => trimmed_json(s),
            Val::Hl7 { v, .. } => trimmed_json(self.split.text(v)),
            other => self
                .text(&other)
                .map(|t| Json::String(Cow::Owned(t.into_owned()))),
        })
    }

    /// Applies rules to `obj`; says whether they read the message and
    /// whether what they read wrote anything (see [`Wrote`]). `asked`: under
    /// a `when:` that held, where a constant the author asked for on a
    /// condition (`code.text: "unknown"`) counts as data.
    fn apply_rules(
        &self,
        rules: &'m [Rule],
        sc: &Scope<'m>,
        obj: &mut Object<'m>,
        asked: bool,
    ) -> Fallible<Wrote> {
        let mut wrote = Wrote::default();
        // The texts of the reads the rules' first tests compare (`OBX-2 =
        // "NM"` down a list of value types), read once for the list.
        let mut keys: SmallVec<[(u64, Texts<'m>); 4]> = SmallVec::new();
        for r in rules {
            // A rule whose parts are all empty would write nothing: what it
            // would report stands in for running it. Not under a `when:`
            // that held (`asked`), where a constant counts as data.
            if !asked
                && !self.exhaustive
                && let Some(k) = &r.skip
            {
                if k.applies(sc.fields, sc.parts) {
                    wrote |= Wrote {
                        data: false,
                        tried: true,
                        based: k.based.then_some(false),
                    };
                    continue;
                }
                // A `when:` ruled out by one conjunct (exact but for what the
                // others would have marked as read: not with the unread report).
                if self.reps.is_none() && k.fails(sc.fields, sc.parts) {
                    wrote |= Wrote {
                        data: false,
                        tried: true,
                        based: None,
                    };
                    continue;
                }
            }
            if let Some(g) = &r.guard
                && !self.exhaustive
            {
                let i = match keys.iter().position(|(id, _)| *id == g.key_id) {
                    Some(i) => i,
                    None => {
                        let texts = self
                            .eval(&g.key, sc)?
                            .iter()
                            .filter_map(|v| match v {
                                Val::Hl7 { v, .. } => {
                                    let t = self.split.text(*v);
                                    (!t.trim().is_empty()).then(|| match t {
                                        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
                                        Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
                                    })
                                }
                                other => self.text(other).map(|t| Cow::Owned(t.into_owned())),
                            })
                            .collect();
                        keys.push((g.key_id, texts));
                        keys.len() - 1
                    }
                };
                if !g.holds(&keys[i].1) {
                    wrote |= Wrote {
                        data: false,
                        tried: true,
                        based: None,
                    };
                    continue;
                }
            }
            match &r.each {
                None => wrote |= self.apply_rule(r, sc, obj, asked)?,
                Some(e) => {
                    wrote.tried = true;
                    for v in self.eval(e, sc)? {
                        let group = if let Val::Group(g) = v { g } else { sc.group };
                        let it = self.scope(group, v, sc.frame, sc.source);
                        wrote |= self.apply_rule(r, &it, obj, asked)?;
                    }
                }
            }
        }
        Ok(wrote)
    }

    /// One rule in one scope (one iteration of its `for:`).
    fn apply_rule(
        &self,
        r: &'m Rule,
        it: &Scope<'m>,
        obj: &mut Object<'m>,
        asked: bool,
    ) -> Fallible<Wrote> {
        if let Some(w) = &r.when
            && !self.cond(w, it)?
        {
            return Ok(Wrote {
                data: false,
                tried: true,
                based: None,
            });
        }
        let asked = asked || r.when.is_some();
        match &*r.body {
            Body::Many(inner) => self.apply_rules(inner, it, obj, asked),
            Body::Merge(e) => {
                let mut gave = false;
                for v in self.eval(e, it)? {
                    if let Val::Json(Json::Object(o)) = v {
                        gave |= !o.is_empty();
                        merge_distinct(obj, o);
                    }
                }
                Ok(Wrote {
                    data: gave,
                    tried: true,
                    based: Some(gave),
                })
            }
            Body::Assign(path, value) => {
                let (vals, wrote): (SmallVec<[Json<'m>; 2]>, Wrote) = match value {
                    RValue::Expr(e) => {
                        let mut out = SmallVec::new();
                        if !self.direct(e, it, &mut out)? {
                            for v in self.eval(e, it)? {
                                if let Some(j) = self.to_json(v, &path.code, &e.origin)? {
                                    out.push(j);
                                }
                            }
                        }
                        if path.code == "code" {
                            out = out.into_iter().map(code_json).collect();
                        }
                        let literal = matches!(e.node, CNode::Lit(_));
                        let data = !out.is_empty() && (asked || !literal);
                        (
                            out,
                            Wrote {
                                data,
                                tried: !literal,
                                based: None,
                            },
                        )
                    }
                    RValue::Object(rules) => {
                        let mut o = Object::with_capacity(rules.len().min(16));
                        let wrote = self.apply_rules(rules, it, &mut o, asked)?;
                        // Constants left over when every value an object reads
                        // is empty (`identifier: {system: us-ssn}` when PID-19
                        // is empty) are dropped; a block of constants only
                        // (`category: encounter-diagnosis`, an identifier's
                        // `type` beside its value) is meant as written.
                        // A `from:` decides this block, not the ones around it.
                        // An extension whose value found nothing (a value no
                        // conversion could read, kept elsewhere) is nothing:
                        // FHIR wants a value or nested extensions (ext-1).
                        let hollow = path.code == "Extension"
                            && !o
                                .members
                                .iter()
                                .any(|m| m.key.starts_with("value") || m.key == "extension");
                        if o.is_empty() || wrote.only_leftovers() || hollow {
                            let none = Wrote {
                                data: false,
                                tried: wrote.tried,
                                based: None,
                            };
                            (SmallVec::new(), none)
                        } else {
                            (
                                smallvec![Json::Object(o)],
                                Wrote {
                                    based: None,
                                    ..wrote
                                },
                            )
                        }
                    }
                };
                set(obj, path, vals);
                Ok(wrote)
            }
        }
    }
}

/// What rules did: `tried` when they read the message (an expression other
/// than a literal, a `for:` or a `when:`); `data` when something they read
/// (or a constant under a `when:`) was written; `based` when a `from:` ran,
/// whether it gave anything.
#[derive(Clone, Copy, Default)]
struct Wrote {
    data: bool,
    tried: bool,
    based: Option<bool>,
}

impl Wrote {
    /// The rules read the message, found nothing, and wrote constants only;
    /// or the block is built `from:` a mapping that gave nothing (what the
    /// rules beside it add decorates that result and is nothing alone).
    fn only_leftovers(self) -> bool {
        (self.tried && !self.data) || self.based == Some(false)
    }
}

impl std::ops::BitOrAssign for Wrote {
    fn bitor_assign(&mut self, o: Wrote) {
        self.data |= o.data;
        self.tried |= o.tried;
        self.based = match (self.based, o.based) {
            (Some(a), Some(b)) => Some(a || b),
            (a, b) => a.or(b),
        };
    }
}

/// A FHIR decimal as written (no exponent).
/// An HL7 NM as a FHIR decimal, or `None` when it is not a number: a sign
/// (`+` dropped), digits with at most one `.`, no exponent. HL7 allows what
/// FHIR's decimal does not, so it is written the FHIR way: `.5` → `0.5`,
/// `5.` → `5`, `007` → `7`; the digits after the point, and so the
/// precision, stay as sent (`1.50`).
pub fn decimal_text(t: &str) -> Option<String> {
    let t = t.trim();
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int)
        || !frac.is_none_or(digits)
        || (int.is_empty() && frac.is_none_or(str::is_empty))
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let mut out = String::with_capacity(t.len() + 1);
    if neg {
        out.push('-');
    }
    out.push_str(if int.is_empty() { "0" } else { int });
    if let Some(f) = frac.filter(|f| !f.is_empty()) {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// An HL7 coding-system or namespace name as a FHIR system URI when it is
/// one we know or already a URI: the common table 0396 names, `HL7nnnn`
/// tables, URIs, OIDs and UUIDs; anything else as written (`system()`).
pub fn coding_system(name: &str) -> String {
    known_system(name).unwrap_or_else(|| {
        let n = name.trim();
        // A name no URI can hold as written (a space or control byte in a
        // damaged OID) is written the reversible way `codesystem()` writes.
        if n.chars().any(|c| c.is_whitespace() || c.is_control()) {
            code_system_uri(n)
        } else {
            n.to_string()
        }
    })
}

/// Like [`coding_system`], but always an absolute URI, as `Coding.system`
/// must be (`codesystem()`): a name we do not know (`L`, `99LOC`, a
/// sender's own) becomes `urn:hl7v2:0396:NAME`, percent-encoded, so it stays
/// readable and reversible.
pub fn code_system_uri(name: &str) -> String {
    known_system(name).unwrap_or_else(|| {
        format!(
            "urn:hl7v2:0396:{}",
            fhir::search::percent_encode(name.trim(), b"-._~+")
        )
    })
}

/// [`coding_system`] (`uri` false) or [`code_system_uri`] (`uri` true),
/// borrowing the URIs of the names it knows.
fn system_of(name: &str, uri: bool) -> Cow<'static, str> {
    match known_name(name) {
        Some(k) => Cow::Borrowed(k),
        None if uri => Cow::Owned(code_system_uri(name)),
        None => Cow::Owned(coding_system(name)),
    }
}

/// The URI of a table 0396 name we know, found without allocating.
fn known_name(name: &str) -> Option<&'static str> {
    let n = name.trim();
    let mut buf = [0u8; 12];
    let b = buf.get_mut(..n.len())?;
    b.copy_from_slice(n.as_bytes());
    b.make_ascii_uppercase();
    let known = match &*b {
        b"LN" | b"LOINC" => "http://loinc.org",
        b"SCT" | b"SNM" | b"SNM3" | b"SNOMED" | b"SNOMEDCT" => "http://snomed.info/sct",
        b"I10" | b"ICD10" => "http://hl7.org/fhir/sid/icd-10",
        b"I10C" | b"ICD10CM" | b"I10-CM" => "http://hl7.org/fhir/sid/icd-10-cm",
        b"I10P" | b"ICD10PCS" => "http://www.cms.gov/Medicare/Coding/ICD10",
        // I9CDX and I9CP: table 0396's ICD-9-CM diagnosis and procedure codes.
        b"I9" | b"I9C" | b"I9CDX" | b"I9CP" | b"ICD9" | b"ICD9CM" => {
            "http://hl7.org/fhir/sid/icd-9-cm"
        }
        b"RXNORM" | b"RXN" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        b"CVX" => "http://hl7.org/fhir/sid/cvx",
        b"MVX" => "http://hl7.org/fhir/sid/mvx",
        b"NDC" => "http://hl7.org/fhir/sid/ndc",
        b"UCUM" | b"ANS+" => "http://unitsofmeasure.org",
        b"NPI" => "http://hl7.org/fhir/sid/us-npi",
        b"CPT" | b"C4" | b"CPT4" => "http://www.ama-assn.org/go/cpt",
        // HPC is table 0396's older name for HCPCS; HCPT is not HCPCS but the
        // Health Care Provider Taxonomy (NUCC), below.
        b"HCPCS" | b"HPC" => "urn:oid:2.16.840.1.113883.6.285",
        b"CDCREC" => "urn:oid:2.16.840.1.113883.6.238",
        // The CDC's PHIN vocabulary (funding sources, eligibility capture:
        // the immunization guide's codes) and the NCI Thesaurus (its routes).
        b"CDCPHINVS" => "urn:oid:2.16.840.1.114222.4.5.274",
        b"NCIT" => "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl",
        b"NUCC" | b"HCPT" => "http://nucc.org/provider-taxonomy",
        b"DCM" => "http://dicom.nema.org/resources/ontology/DCM",
        b"ISO3166_1" | b"ISO3166-1" | b"ISO3166" => "urn:iso:std:iso:3166",
        b"ISO639" | b"ISO639-1" => "urn:ietf:bcp:47",
        b"ISO6392" | b"ISO639-2" => "http://terminology.hl7.org/CodeSystem/iso639-2",
        b"ISO4217" => "urn:iso:std:iso:4217",
        _ => return None,
    };
    Some(known)
}

fn known_system(name: &str) -> Option<String> {
    if let Some(k) = known_name(name) {
        return Some(k.to_string());
    }
    let n = name.trim();
    let upper = n.to_ascii_uppercase();
    if let Some(num) = upper
        .strip_prefix("HL7")
        .filter(|r| r.len() == 4 && r.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!("http://terminology.hl7.org/CodeSystem/v2-{num}"));
    }
    if is_absolute_uri(n) {
        return Some(n.to_string());
    }
    if n.split('.').count() > 1
        && n.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!("urn:oid:{n}"));
    }
    if crate::mapping::runtime::is_uuid_like(n) {
        return Some(format!("urn:uuid:{}", n.to_ascii_lowercase()));
    }
    None
}

/// Text that is already an absolute URI: a scheme (`http:`, `urn:`) and no
/// whitespace. A sender's coding-system name with a colon in it
/// (`POST 12H CFST:MCNC:PT`) is not one.
fn is_absolute_uri(n: &str) -> bool {
    let Some((scheme, rest)) = n.split_once(':') else {
        return false;
    };
    let mut b = scheme.bytes();
    b.next().is_some_and(|c| c.is_ascii_alphabetic())
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !n.chars().any(char::is_whitespace)
}

/// Base64 text as FHIR's base64Binary takes it: whitespace (line breaks
/// a sender wrapped it with) taken out, the standard alphabet, padding only
/// at the end, whole groups of four. `None` when it is not base64.
pub fn base64_data(t: &str) -> Option<String> {
    let mut s: String = t.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    // Base64 sent without its padding (a length of 4n+2 or 4n+3 and no
    // `=`, as some senders write it) is padded: the same bytes.
    if !s.ends_with('=') && matches!(s.len() % 4, 2 | 3) {
        let pads = 4 - s.len() % 4;
        s.extend(std::iter::repeat_n('=', pads));
    }
    let body = s.trim_end_matches('=');
    let ok = !s.is_empty()
        && s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    ok.then_some(s)
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// 8-4-4-4-12 hex.
pub fn is_uuid_like(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The member of `obj` a target step names: found by its schema place
/// (a member a sub-mapping or the runtime wrote carries one too); one
/// without a place is matched by name.
fn slot_of<'o, 'm>(obj: &'o mut Object<'m>, step: &Step) -> &'o mut Json<'m> {
    let i = match obj
        .members
        .iter()
        .position(|m| m.slot == step.place || (m.slot == Slot::UNKNOWN && m.key == step.name))
    {
        Some(i) => i,
        None => {
            let empty = if step.array {
                Json::Array(Vec::new())
            } else {
                Json::Object(Object::new())
            };
            obj.members.push(member(step.name, step.place, empty));
            obj.members.len() - 1
        }
    };
    &mut obj.members[i].value
}

/// Writes values at a target path.
fn set<'m>(obj: &mut Object<'m>, path: &TargetPath, vals: SmallVec<[Json<'m>; 2]>) {
    if vals.is_empty() {
        return;
    }
    let mut cur = obj;
    let n = path.steps.len();
    for (i, step) in path.steps.iter().enumerate() {
        let last = i + 1 == n;
        if last {
            if !step.array {
                if let Some(v) = vals.into_iter().next() {
                    *slot_of(cur, step) = v;
                }
            } else {
                let arr = slot_of(cur, step);
                if !matches!(arr, Json::Array(_)) {
                    *arr = Json::Array(Vec::new());
                }
                if let Json::Array(a) = arr {
                    match step.index {
                        StepIndex::Append => {
                            for v in vals {
                                // The same item sent twice (`PID-3` =
                                // `123^^^H^MR~123^^^H^MR`) is one item. Long
                                // lists (a report's results) are left alone:
                                // their items differ by construction.
                                if matches!(v, Json::Object(_)) && a.len() <= 16 && a.contains(&v) {
                                    continue;
                                }
                                a.push(v);
                            }
                        }
                        StepIndex::One => {
                            let v = vals.into_iter().next().unwrap_or(Json::Null);
                            if a.is_empty() { a.push(v) } else { a[0] = v }
                        }
                        StepIndex::Nth(k) => {
                            while a.len() <= k {
                                a.push(Json::Object(Object::new()));
                            }
                            a[k] = vals.into_iter().next().unwrap_or(Json::Null);
                        }
                    }
                }
            }
            return;
        }
        let entry = slot_of(cur, step);
        let next: &mut Json<'m> = if step.array {
            if !matches!(entry, Json::Array(_)) {
                *entry = Json::Array(Vec::new());
            }
            let Json::Array(a) = entry else { return };
            match step.index {
                StepIndex::Append => {
                    a.push(Json::Object(Object::new()));
                }
                StepIndex::One if a.is_empty() => a.push(Json::Object(Object::new())),
                StepIndex::Nth(k) => {
                    while a.len() <= k {
                        a.push(Json::Object(Object::new()));
                    }
                }
                StepIndex::One => {}
            }
            let k = match step.index {
                StepIndex::Append => a.len() - 1,
                StepIndex::Nth(k) => k,
                StepIndex::One => 0,
            };
            &mut a[k]
        } else {
            entry
        };
        if !matches!(next, Json::Object(_)) {
            *next = Json::Object(Object::new());
        }
        let Json::Object(o) = next else { return };
        cur = o;
    }
}

/// A trimmed string written into a FHIR `code`, which R4 allows no
/// whitespace in but single spaces: a run of whitespace, a tab or a line
/// break (`NH  Provider`, a code padded inside, a note that overran its
/// field) becomes one space, so a sender's padding does not fail the message.
fn code_json(j: Json<'_>) -> Json<'_> {
    let Json::String(s) = &j else { return j };
    let mut prev_space = false;
    let padded = s.chars().any(|c| {
        let odd = c.is_whitespace() && (prev_space || c != ' ');
        prev_space = c.is_whitespace();
        odd
    });
    if !padded {
        return j;
    }
    Json::String(Cow::Owned(
        s.split_whitespace().collect::<Vec<_>>().join(" "),
    ))
}

/// A string written into FHIR: trimmed, and nothing when blank.
fn trimmed_json(s: Cow<'_, str>) -> Option<Json<'_>> {
    let s = fhir_spaces(s);
    let t = s.trim();
    if t.is_empty() {
        None
    } else if t.len() == s.len() {
        Some(Json::String(s))
    } else {
        Some(Json::String(match s {
            Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
            Cow::Owned(o) => Cow::Owned(o.trim().to_string()),
        }))
    }
}

/// Text as a FHIR string holds it: whitespace and control characters other
/// than space, tab, CR and LF (a no-break space from a Latin-1 0xA0, a
/// vertical tab, U+2028, a stray BOM, a record separator 0x1E) become a space. FHIR's string pattern `[ \r\n\t\S]+` is read
/// by JSON Schema validators with JavaScript's `\s`, which counts those as
/// whitespace and so refuses them.
fn fhir_spaces(s: Cow<'_, str>) -> Cow<'_, str> {
    let odd = |c: char| {
        ((c.is_whitespace() || c.is_control()) && !matches!(c, ' ' | '\t' | '\r' | '\n'))
            || c == '\u{feff}'
    };
    // One pass for the usual case: printable ASCII, tab, CR and LF.
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return s;
    }
    if !s.chars().any(odd) {
        return s;
    }
    Cow::Owned(s.chars().map(|c| if odd(c) { ' ' } else { c }).collect())
}

/// JSON's number grammar (what a FHIR decimal or integer is written as).
fn is_json_number(t: &str) -> bool {
    fhir::tree::scan_number(t.as_bytes()) == Ok(t.len())
}

/// Merges a second copy of a resource (or a second segment map's part of
/// it) into the first: array items not
/// already there are added.
/// `a` says all that `b` says (and perhaps more): every member of `b` is in
/// `a` with a value that covers it; other values must be equal.
fn covers(a: &Json<'_>, b: &Json<'_>) -> bool {
    match (a, b) {
        (Json::Object(a), Json::Object(b)) => b
            .iter()
            .all(|(k, bv)| a.get(k).is_some_and(|av| covers(av, bv))),
        _ => a == b,
    }
}

fn merge_distinct<'m>(a: &mut Object<'m>, b: Object<'m>) {
    for m in b.members {
        // A choice element holds one value: a second copy giving it another
        // type (two OBX with the same set id and code, one NM, one DT)
        // keeps the first, as a second value of one type does.
        if a.members.iter().any(|x| x.slot.other_choice(m.slot)) {
            continue;
        }
        let at = a
            .members
            .iter()
            .position(|x| (x.slot == m.slot && m.slot != Slot::UNKNOWN) || x.key == m.key);
        match (at.map(|i| &mut a.members[i].value), m.value) {
            (Some(Json::Array(x)), Json::Array(y)) => {
                // The same item said twice, once with more (ORC-2 with its
                // namespace, OBR-2 with only the number), is one item: the
                // fuller one.
                for item in y {
                    if x.iter().any(|have| covers(have, &item)) {
                        continue;
                    }
                    match x.iter_mut().find(|have| covers(&item, have)) {
                        Some(have) => *have = item,
                        None => x.push(item),
                    }
                }
            }
            (Some(Json::Object(x)), Json::Object(y)) => merge_distinct(x, y),
            (Some(_), _) => {}
            (None, v) => a.members.push(Member {
                key: m.key,
                slot: m.slot,
                value: v,
            }),
        }
    }
}

/// Puts the members of every object in their schema places' order (the
/// compiler gave each member its place, so this needs no lookups; a
/// member without one goes last, as it came).
fn order_members(v: &mut Json<'_>) {
    match v {
        Json::Object(o) => {
            for m in &mut o.members {
                order_members(&mut m.value);
            }
            if !o.members.is_sorted_by_key(|m| m.slot) {
                o.members.sort_by_key(|m| m.slot);
            }
        }
        Json::Array(a) => a.iter_mut().for_each(order_members),
        _ => {}
    }
}

/// What a run gives the caller's `finish`: the result tree, the message
/// mapping that ran, and the unread report.
type Finish<'f, R> = dyn FnOnce(&Json<'_>, String, Vec<String>, Vec<Kept>) -> R + 'f;

impl Registry {
    /// Runs a mapping on an HL7 message; the result as a `serde_json::Value`
    /// (for tests, diffs and tools).
    pub fn run(&self, name: &str, input: &[u8], opts: &RunOptions) -> Result<Output, MapError> {
        self.run_with(
            name,
            input,
            opts,
            Box::new(|tree, mapping, unread, kept| Output {
                value: tree.to_value(),
                mapping,
                unread,
                kept,
            }),
        )
    }

    /// Runs a mapping on an HL7 message; the result as JSON text (compact,
    /// or indented with `pretty`), written straight from the result tree:
    /// what a channel's `map:` step delivers.
    pub fn run_json(
        &self,
        name: &str,
        input: &[u8],
        opts: &RunOptions,
        pretty: bool,
    ) -> Result<JsonOutput, MapError> {
        self.run_with(
            name,
            input,
            opts,
            Box::new(move |tree, _, _, kept| JsonOutput {
                json: if pretty {
                    tree.to_json_pretty()
                } else {
                    // A Bundle is some ten times its message.
                    tree.to_json_string_sized(input.len() * 10)
                },
                kept,
            }),
        )
    }

    fn run_with<R>(
        &self,
        name: &str,
        input: &[u8],
        opts: &RunOptions,
        finish: Box<Finish<'_, R>>,
    ) -> Result<R, MapError> {
        let plain = |m: String| MapError {
            origin: None,
            at: None,
            message: m,
        };
        if !Split::fits(input.len()) {
            return Err(plain(format!(
                "the message is {} bytes: more than a mapping reads ({} at most)",
                input.len(),
                Split::MAX_LEN
            )));
        }
        let msg = Message::parse(input)
            .map_err(|e| plain(format!("the input is not a readable HL7 v2 message: {e}")))?;
        let Some(mapping) = self.mappings.get(name) else {
            return Err(plain(format!(
                "no mapping named {name:?} under {}",
                crate::config::display_path(&self.dir)
            )));
        };
        // Codes are upper case in the standard; a sender writing `adt^a01` still routes.
        // v2.1/v2.2 senders may leave MSH-9.2 empty and name the event in
        // EVN-1 only (`ADT` + `EVN|A01`).
        let mt = msg.message_type();
        let message_type = if mt.trigger.trim().is_empty() {
            let evn1 = "EVN-1"
                .parse::<Hl7Path>()
                .ok()
                .and_then(|p| msg.text(&p).map(|t| t.trim().to_string()))
                .unwrap_or_default();
            if evn1.is_empty() {
                mt.to_string()
            } else {
                format!("{}^{evn1}", mt.code.trim())
            }
        } else {
            mt.to_string()
        }
        .to_ascii_uppercase();
        let (mm_name, mm) = match &mapping.kind {
            Kind::Router(r) => {
                // By type first; a site's own event (a Z code or trigger,
                // `ADT^Z99^ADT_A01`) that no type route names, by its
                // structure (MSH-9.3). Standard events are never routed by
                // structure: one left unrouted (A29 deletes a person, in
                // ADT_A21's structure) stays so.
                let local = mt.code.trim().to_ascii_uppercase().starts_with('Z')
                    || mt.trigger.trim().to_ascii_uppercase().starts_with('Z');
                let structure = if local {
                    mt.structure.to_ascii_uppercase()
                } else {
                    String::new()
                };
                let find = |by: RouteBy, what: &str| {
                    r.routes.iter().find(|route| {
                        route.by == by
                            && !what.is_empty()
                            && route.patterns.iter().any(|p| wildcard_match(p, what))
                    })
                };
                let hit = find(RouteBy::Type, &message_type)
                    .or_else(|| find(RouteBy::Structure, &structure));
                let Some(Route { target, .. }) = hit else {
                    let known = |by: RouteBy| -> String {
                        r.routes
                            .iter()
                            .filter(|route| route.by == by)
                            .flat_map(|route| route.patterns.iter().map(String::as_str))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let structures = known(RouteBy::Structure);
                    return Err(plain(format!(
                        "{}: no route for message type {message_type:?}{} (routes: {}{})",
                        mapping.name,
                        if structure.is_empty() {
                            String::new()
                        } else {
                            format!(", structure {structure:?}")
                        },
                        known(RouteBy::Type),
                        if structures.is_empty() {
                            String::new()
                        } else {
                            format!("; by structure: {structures}")
                        }
                    )));
                };
                match self.mappings.get(target).map(|m| &m.kind) {
                    Some(Kind::Message(mm)) => (target.clone(), mm),
                    _ => return Err(plain(format!("{target} is not a message mapping"))),
                }
            }
            Kind::Message(mm) => (mapping.name.clone(), mm),
            Kind::Segment(rm) => {
                return self.run_segment(mapping, rm.source.as_str(), &msg, opts, finish);
            }
            Kind::Datatype(_) => {
                return Err(plain(format!(
                    "{name} is a datatype mapping; run it through a segment or message mapping"
                )));
            }
        };
        if let Some(missing) = mm
            .requires
            .iter()
            .find(|id| !msg.segments().any(|s| s.id_bytes() == id.as_bytes()))
        {
            return Err(plain(format!(
                "{mm_name}: the message has no {missing} segment, which this mapping requires (`requires:` in {})",
                crate::config::display_path(
                    &self
                        .mappings
                        .get(&mm_name)
                        .map(|m| m.file.to_path_buf())
                        .unwrap_or_default()
                )
            )));
        }
        let structure_name = mm
            .structure
            .clone()
            .unwrap_or_else(|| msg.message_type().structure.into_owned());
        let ids: Vec<String> = msg.segments().map(|s| s.id().into_owned()).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let grouping = Grouping::build(
            &id_refs,
            self.structures.get(&structure_name),
            &structure_name,
        );
        let msh = |p: &str| {
            p.parse::<Hl7Path>()
                .ok()
                .and_then(|p| msg.text(&p).map(|t| t.into_owned()))
                .unwrap_or_default()
        };
        let key = format!(
            "{}|{}|{}|{}",
            msh("MSH-3"),
            msh("MSH-4"),
            msh("MSH-10"),
            msh("MSH-7")
        );
        let env = Env::new(self, &msg, grouping, key, opts);
        // Whole segments and fields the message mapping ignores.
        if let Some(m) = self.mappings.get(&mm_name) {
            for (sid, field) in &m.ignore {
                for (i, s) in msg.segments().enumerate() {
                    if s.id_bytes() == sid.as_bytes() {
                        env.ignored.borrow_mut().insert(i, *field);
                    }
                }
            }
        }
        let root = Scope::plain(0, None, 0);
        // Phase 1: every resource gets its id.
        let mut instances = Vec::new();
        env.plan(&mm.blocks, &root, &mm_name, &mut instances, "")?;
        // Values phase 1 could not read (in an id or a condition) are kept
        // on the first resource once it is made.
        let planned = env.unreadable.borrow().len();
        env.planned.set(Some(planned));
        // Phase 2: build.
        let mut resources: Vec<Made<'_>> = Vec::new();
        // Index by id: a large message (thousands of OBX) must not be quadratic.
        let mut by_id: HashMap<String, usize> =
            HashMap::with_capacity_and_hasher(instances.len(), Default::default());
        for inst in instances {
            let rb = inst.block;
            let noted = env.unreadable.borrow().len();
            let mut obj = Object::with_capacity(8);
            obj.members.push(member(
                "resourceType",
                Slot::RESOURCE_TYPE,
                Json::str(rb.resource),
            ));
            for f in &rb.from {
                // The resource is written whatever its `from:` gives (it has
                // an id and rules beside it): the constants its segment
                // mapping writes (`Coverage.status`) belong to it even when
                // every field that mapping reads is empty.
                let vals = match &f.node {
                    CNode::Sub(name, arg, at) => env.sub(f, name, arg, at, &inst.scope, true)?,
                    _ => env.eval(f, &inst.scope)?,
                };
                for v in vals {
                    // ORC and OBR both carry the placer and filler numbers:
                    // the same identifier from two segment maps is one.
                    if let Val::Json(Json::Object(o)) = v {
                        merge_distinct(&mut obj, o);
                    }
                }
            }
            env.apply_rules(&rb.set, &inst.scope, &mut obj, false)?;
            // Values this resource's rules could not read stay on it.
            let now = env.unreadable.borrow().len();
            add_extensions(&mut obj, rb.resource, env.unreadable_extensions(noted..now));
            obj.insert_slot("id", rb.id_place, text_json(inst.id.clone()));
            // The same resource made twice (a practitioner who is both
            // attending and admitting) is one entry.
            match by_id.get(&inst.id).and_then(|i| resources.get_mut(*i)) {
                Some(made) => merge_distinct(&mut made.obj, obj),
                None => {
                    by_id.insert(inst.id.clone(), resources.len());
                    resources.push(Made {
                        alias: &rb.alias,
                        id: inst.id,
                        obj,
                        origin: inst.origin,
                        request: rb.request,
                    })
                }
            }
        }
        if planned > 0
            && let Some(first) = resources.first_mut()
        {
            add_own_extensions(&mut first.obj, env.unreadable_extensions(0..planned));
        }
        // Segments no rule read and no mapping ignores: Z-segments, and any
        // other segment the structure left where no rule looks (an RXA
        // before any ORC, a segment out of order). Never dropped silently.
        let z: Vec<usize> = {
            let read = env.read.borrow();
            let ignored = env.ignored.borrow();
            let touched = env.touched.borrow();
            let untouched = |i: usize| {
                !read.any_in(i)
                    && !ignored.contains(i, 0)
                    && !touched.get(i).copied().unwrap_or(false)
            };
            (0..msg.segment_count())
                .filter(|i| {
                    // A segment with nothing past its set id (`NK1|3`) holds
                    // nothing to keep; a Z-segment's field 1 is whatever its
                    // sender made it (`ZZZ|value`), so it counts.
                    untouched(*i)
                        && msg.segment_at(*i).is_some_and(|s| {
                            let first = if s.id_bytes().first() == Some(&b'Z') {
                                1
                            } else {
                                2
                            };
                            s.fields().any(|(n, f)| n >= first && !f.is_empty())
                        })
                })
                .collect()
        };
        match mm.z_segments {
            ZPolicy::Error if !z.is_empty() => {
                return Err(MapError {
                    origin: None,
                    at: Some(loc(&msg, z[0], 0)),
                    message: format!("{mm_name}: no rule reads this segment (z_segments: error)"),
                });
            }
            ZPolicy::Keep if !z.is_empty() => {
                // On a resource this message writes (a conditional create
                // of a record another feed owns may not be written at all).
                let written = |m: &Made<'_>| m.request == Request::Update;
                let target = resources
                    .iter()
                    .position(|m| m.alias == "patient" && written(m))
                    .or_else(|| {
                        resources.iter().position(|m| {
                            written(m)
                                && m.obj.get("resourceType").and_then(Json::as_str)
                                    != Some("Bundle")
                        })
                    });
                if let Some(t) = target {
                    let [url, value] = places().extension;
                    let exts: Vec<Json<'_>> = z
                        .iter()
                        .filter_map(|i| msg.segment_at(*i))
                        .map(|s| {
                            let text =
                                fhir_spaces(msg.charset().decode(Cow::Borrowed(s.as_bytes())));
                            Json::Object(Object {
                                members: vec![
                                    member("url", url, Json::str(Z_EXTENSION)),
                                    member("valueString", value, Json::String(text)),
                                ],
                            })
                        })
                        .collect();
                    add_own_extensions(&mut resources[t].obj, exts);
                    for i in &z {
                        env.mark(*i, 0);
                    }
                    // A Z-segment kept is the policy at work; a standard one
                    // means no rule reads it where it stands (a structure
                    // that does not place it, a sender's order): said in the
                    // unread report.
                    env.unused.borrow_mut().extend(
                        z.iter()
                            .copied()
                            .filter(|i| {
                                msg.segment_at(*i)
                                    .is_some_and(|s| s.id_bytes().first() != Some(&b'Z'))
                            })
                            .map(|i| (i, 0)),
                    );
                }
            }
            _ => {}
        }
        // The Bundle.
        let bundle_type = opts.bundle_type.unwrap_or(mm.bundle_type);
        if bundle_type == BundleType::Message {
            resources.sort_by_key(|m| {
                m.obj.get("resourceType").and_then(Json::as_str) != Some("MessageHeader")
            });
        }
        let p = places();
        let [full_url_at, resource_at, request_at] = p.entry;
        let [method_at, url_at, if_none_exist_at] = p.request;
        let mut origins = Vec::with_capacity(resources.len());
        let mut entries = Vec::with_capacity(resources.len());
        for Made {
            alias,
            id,
            obj,
            origin,
            request,
        } in resources
        {
            origins.push((alias, origin));
            let rt = obj
                .get("resourceType")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string();
            let req = (bundle_type == BundleType::Transaction).then(|| {
                let query = (request == Request::Create)
                    .then(|| obj.get("identifier"))
                    .flatten()
                    .and_then(fhir::search::identifier_query_in);
                let members = match (request, query) {
                    (Request::Create, Some(query)) => vec![
                        member("method", method_at, Json::str("POST")),
                        member("url", url_at, text_json(rt)),
                        member("ifNoneExist", if_none_exist_at, text_json(query)),
                    ],
                    _ => vec![
                        member("method", method_at, Json::str("PUT")),
                        member(
                            "url",
                            url_at,
                            text_json([rt.as_str(), "/", id.as_str()].concat()),
                        ),
                    ],
                };
                Json::Object(Object { members })
            });
            let mut e = Object::with_capacity(3);
            e.members.push(member(
                "fullUrl",
                full_url_at,
                text_json(["urn:uuid:", id.as_str()].concat()),
            ));
            e.members
                .push(member("resource", resource_at, Json::Object(obj)));
            if let Some(req) = req {
                e.members.push(member("request", request_at, req));
            }
            entries.push(Json::Object(e));
        }
        let [rt_at, id_at, identifier_at, type_at, timestamp_at, entry_at] = p.bundle;
        let mut bundle = Object::with_capacity(6);
        bundle
            .members
            .push(member("resourceType", rt_at, Json::str("Bundle")));
        bundle
            .members
            .push(member("id", id_at, text_json(uuid5(&["bundle", &env.key]))));
        let control = msh("MSH-10");
        if !control.is_empty() {
            let [system, value] = p.identifier;
            bundle.members.push(member(
                "identifier",
                identifier_at,
                Json::Object(Object {
                    members: vec![
                        member("system", system, Json::str("urn:hl7v2:MSH-10")),
                        member("value", value, text_json(fhir_spaces(Cow::Owned(control)))),
                    ],
                }),
            ));
        }
        bundle.members.push(member(
            "type",
            type_at,
            Json::str(if bundle_type == BundleType::Message {
                "message"
            } else {
                "transaction"
            }),
        ));
        // MSH-7 that is no date/time (a sender's shifted header) gives no
        // timestamp, which the Bundle may lack; the unread report says so.
        match datetime::parse(&msh("MSH-7")) {
            Ok(t) => bundle.members.push(member(
                "timestamp",
                timestamp_at,
                text_json(t.instant(&env.tz)),
            )),
            Err(_) if !msh("MSH-7").trim().is_empty() => env.unused.borrow_mut().push((0, 7)),
            Err(_) => {}
        }
        if !entries.is_empty() {
            bundle
                .members
                .push(member("entry", entry_at, Json::Array(entries)));
        }
        let mut value = Json::Object(bundle);
        order_members(&mut value);
        let mut mended = Vec::new();
        if opts.validate {
            let mut issues = fhir::validate::validate_tree(&value);
            // A period a sender's dates reverse (per-1), or a range its
            // bounds do (rng-2), is mended, not a failed message (`mend`);
            // strict runs fail on it instead.
            if !opts.strict && issues.iter().any(super::mend::is_mendable) {
                super::mend::reversed_bounds(&mut value, &mut String::from("Bundle"), &mut mended);
                order_members(&mut value);
                issues = fhir::validate::validate_tree(&value);
            }
            if fhir::validate::has_errors(&issues) {
                let errors: Vec<&fhir::validate::Issue> = issues
                    .iter()
                    .filter(|i| i.severity <= fhir::validate::Severity::Error)
                    .collect();
                let list: Vec<String> = errors.iter().take(5).map(|i| i.to_string()).collect();
                // Name the resource block that made the first bad entry.
                let made_by = errors.first().and_then(|i| {
                    let n: usize = i
                        .location
                        .strip_prefix("Bundle.entry[")?
                        .split(']')
                        .next()?
                        .parse()
                        .ok()?;
                    origins.get(n)
                });
                return Err(match made_by {
                    Some((alias, origin)) => *fail(
                        origin,
                        None,
                        format!(
                            "the resource `{alias}` is not valid FHIR R4 (is a value it needs missing from the message?): {}",
                            list.join("; ")
                        ),
                    ),
                    None => plain(format!(
                        "{mm_name}: the result is not valid FHIR R4: {}",
                        list.join("; ")
                    )),
                });
            }
        }
        let unread = if opts.report_unread {
            env.unread()
        } else {
            Vec::new()
        };
        let mut kept = env.kept();
        kept.extend(mended);
        Ok(finish(&value, mm_name, unread, kept))
    }

    fn run_segment<R>(
        &self,
        m: &Mapping,
        source: &str,
        msg: &Message<'_>,
        opts: &RunOptions,
        finish: Box<Finish<'_, R>>,
    ) -> Result<R, MapError> {
        let plain = |s: String| MapError {
            origin: None,
            at: None,
            message: s,
        };
        let idx = msg
            .segments()
            .position(|s| s.id() == source)
            .ok_or_else(|| plain(format!("{}: the input has no {source} segment", m.name)))?;
        let ids: Vec<String> = msg.segments().map(|s| s.id().into_owned()).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let env = Env::new(
            self,
            msg,
            Grouping::build(&id_refs, None, "message"),
            String::new(),
            opts,
        );
        let sc = Scope::plain(0, None, 0);
        let origin = Origin {
            file: m.file.clone(),
            pos: Default::default(),
        };
        let obj = env
            .call(m, Val::Seg(idx), &sc, &origin, true)?
            .unwrap_or_default();
        // A resource gets its type first and the definitions' order, and is
        // validated like a Bundle would be.
        let target = match &m.kind {
            Kind::Segment(rm) | Kind::Datatype(rm) => rm.target.as_str(),
            _ => "",
        };
        let mut obj = obj;
        if Schema::r4().is_resource(target) {
            add_extensions(&mut obj, target, env.unreadable_extensions(0..usize::MAX));
        }
        let mut value = Json::Object(obj);
        let mut mended = Vec::new();
        if Schema::r4().is_resource(target)
            && let Json::Object(o) = &mut value
        {
            o.members.insert(
                0,
                member("resourceType", Slot::RESOURCE_TYPE, Json::str(target)),
            );
            order_members(&mut value);
            if opts.validate {
                let mut issues = fhir::validate::validate_tree(&value);
                if !opts.strict && issues.iter().any(super::mend::is_mendable) {
                    super::mend::reversed_bounds(&mut value, &mut target.to_string(), &mut mended);
                    order_members(&mut value);
                    issues = fhir::validate::validate_tree(&value);
                }
                if fhir::validate::has_errors(&issues) {
                    let list: Vec<String> = issues
                        .iter()
                        .filter(|i| i.severity <= fhir::validate::Severity::Error)
                        .take(5)
                        .map(|i| i.to_string())
                        .collect();
                    return Err(plain(format!(
                        "{}: the result is not valid FHIR R4: {}",
                        m.name,
                        list.join("; ")
                    )));
                }
            }
        } else {
            order_members(&mut value);
        }
        let unread = if opts.report_unread {
            env.unread()
        } else {
            Vec::new()
        };
        let mut kept = env.kept();
        kept.extend(mended);
        Ok(finish(&value, m.name.clone(), unread, kept))
    }
}

impl<'m> Env<'m> {
    fn plan(
        &self,
        blocks: &'m [Block],
        sc: &Scope<'m>,
        mapping: &str,
        out: &mut Vec<Instance<'m>>,
        path: &str,
    ) -> Fallible<()> {
        for b in blocks {
            let iterations: Vec<Option<Val<'m>>> = match &b.each {
                None => vec![None],
                Some(e) => self.eval(e, sc)?.into_iter().map(Some).collect(),
            };
            for (k, v) in iterations.into_iter().enumerate() {
                let scope = match &v {
                    None => sc.clone(),
                    Some(val) => Scope::plain(
                        if let Val::Group(g) = val {
                            *g
                        } else {
                            sc.group
                        },
                        Some(val.clone()),
                        sc.frame,
                    ),
                };
                if let Some(w) = &b.when
                    && !self.cond(w, &scope)?
                {
                    continue;
                }
                // The block's place, for default ids and the blocks nested in
                // it (written only when one of them needs it).
                let here = || format!("{path}/{}.{k}", b.name);
                match &b.kind {
                    // A resource none of whose `from:` segments is here (an
                    // ORDER group opened by a stray TQ1, with neither ORC
                    // nor OBR) is not made: it would be only what `set:`
                    // adds, without the elements its segments give (a
                    // ServiceRequest with no status). What the group holds
                    // is reported unread.
                    BlockKind::Resource(rb) if !self.any_source(rb, &scope)? => {}
                    BlockKind::Resource(rb) => {
                        let id = match &rb.id {
                            Some(e) => {
                                let vals = self.eval(e, &scope)?;
                                let parts = self.texts(&vals);
                                match parts.as_slice() {
                                    [] => uuid5(&[mapping, rb.resource, &self.key, &here()]),
                                    // `id: uuid(...)` is already an id.
                                    [(one, _)] if is_uuid_like(one) => one.to_string(),
                                    _ => {
                                        let mut p: SmallVec<[&str; 4]> = smallvec![rb.resource];
                                        p.extend(parts.iter().map(|(t, _)| t.as_ref()));
                                        uuid5(&p)
                                    }
                                }
                            }
                            None => uuid5(&[mapping, rb.resource, &self.key, &here()]),
                        };
                        self.frames.borrow_mut()[scope.frame]
                            .aliases
                            .entry(rb.alias.clone())
                            .or_default()
                            .push(id.clone());
                        out.push(Instance {
                            id,
                            block: rb,
                            origin: &b.origin,
                            scope,
                        });
                    }
                    BlockKind::Nested(inner) => {
                        let child = {
                            let mut frames = self.frames.borrow_mut();
                            let idx = frames.len();
                            frames.push(Frame {
                                parent: Some(scope.frame),
                                group: match b.each.as_ref().map(|e| &e.node) {
                                    Some(CNode::Group(g, _)) => g.clone(),
                                    _ => String::new(),
                                },
                                ..Frame::default()
                            });
                            frames[scope.frame].children.push(idx);
                            idx
                        };
                        let inner_scope = Scope {
                            frame: child,
                            ..scope
                        };
                        self.plan(inner, &inner_scope, mapping, out, &here())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether one of a resource block's `from:` calls has its segment
    /// (or value) here; a block with no `from:` always has.
    fn any_source(&self, rb: &'m ResourceBlock, sc: &Scope<'m>) -> Fallible<bool> {
        if rb.from.is_empty() {
            return Ok(true);
        }
        for f in &rb.from {
            let CNode::Sub(_, arg, _) = &f.node else {
                return Ok(true);
            };
            if self.present(arg, sc)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether an expression gives a value here (`exists()`), reading no
    /// field when it is a plain path.
    fn present(&self, e: &'m CExpr, sc: &Scope<'m>) -> Fallible<bool> {
        Ok(match &e.node {
            CNode::Rel(c) if !c.is_empty() => self.rel_one(sc, c, &e.origin)?.is_some(),
            CNode::Path(p, _) => {
                let mut any = false;
                self.path_each(sc, p, &mut |_| any = true);
                any
            }
            _ => !self.eval(e, sc)?.is_empty(),
        })
    }

    fn unread(&self) -> Vec<String> {
        let read = self.read.borrow();
        let ignored = self.ignored.borrow();
        let mut out = BTreeSet::new();
        for (i, seg) in self.msg.segments().enumerate() {
            if ignored.contains(i, 0) || read.contains(i, 0) {
                continue;
            }
            for (n, f) in seg.fields() {
                if seg.id() == "MSH" && n <= 2 {
                    continue;
                }
                if f.is_empty() || ignored.contains(i, n) {
                    continue;
                }
                if !read.contains(i, n) {
                    out.insert((i, n, 0));
                    continue;
                }
                // Read, but perhaps not every repetition.
                if let Some(r) = &self.reps {
                    let r = r.borrow();
                    if !r.all.contains(&(i, n)) {
                        for (k, rep) in f.repetitions().enumerate().skip(1) {
                            let k = u16::try_from(k + 1).unwrap_or(u16::MAX);
                            if !rep.is_empty() && !rep.is_null() && !r.nth.contains(&(i, n, k)) {
                                out.insert((i, n, k));
                            }
                        }
                    }
                }
            }
        }
        for (i, n) in self.unused.borrow().iter() {
            out.insert((*i, *n, 0));
        }
        out.into_iter()
            .map(|(i, n, k)| {
                let at = loc(self.msg, i, n);
                if k == 0 {
                    at
                } else {
                    // `PID-17 (segment 3)` → `PID-17[2] (segment 3)`.
                    at.replacen(" (", &format!("[{k}] ("), 1)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod fhir_string_tests {
    use super::{code_json, fhir_spaces};
    use fhir::tree::Json;
    use std::borrow::Cow;

    #[test]
    fn whitespace_json_schema_refuses_becomes_a_space() {
        assert_eq!(
            code_json(Json::str("NH  Provider-General\t\t(A&E)")),
            Json::str("NH Provider-General (A&E)")
        );
        assert_eq!(
            code_json(Json::str("entered in error")),
            Json::str("entered in error")
        );
        assert_eq!(code_json(Json::str("a | b\nc")), Json::str("a | b c"));
        assert_eq!(fhir_spaces(Cow::Borrowed("Dr.\u{a0}Smith")), "Dr. Smith");
        assert_eq!(
            fhir_spaces(Cow::Borrowed("a\u{b}b\u{c}c\u{2028}d\u{feff}")),
            "a b c d "
        );
        assert_eq!(
            fhir_spaces(Cow::Borrowed("UMAE\u{1f}\u{1e}\u{1}\u{7f}\u{85}")),
            "UMAE     "
        );
        let plain = fhir_spaces(Cow::Borrowed("line\r\nnext\tend é"));
        assert!(matches!(plain, Cow::Borrowed(_)));
        assert_eq!(plain, "line\r\nnext\tend é");
    }
}

#[cfg(test)]
mod coding_system_tests {
    use super::{base64_data, code_system_uri, coding_system, decimal_text, merge_distinct};
    use serde_json::json;

    #[test]
    fn a_system_name_no_uri_holds_is_written_reversibly() {
        assert_eq!(coding_system("1.2.3 .4"), "urn:hl7v2:0396:1.2.3%20.4");
        assert_eq!(coding_system("1.2.3\u{16}.4"), "urn:hl7v2:0396:1.2.3%16.4");
        assert_eq!(coding_system("  MYSYS "), "MYSYS");
    }

    #[test]
    fn merging_keeps_the_fuller_of_two_copies() {
        use fhir::tree::Json;
        let a = json!({"identifier": [{"value": "O1"}, {"value": "F1", "system": "urn:x"}]});
        let b = json!({"identifier": [
            {"value": "O1", "assigner": {"display": "EHR"}},
            {"value": "F1"},
            {"value": "O2"}
        ]});
        let (Json::Object(mut a_map), Json::Object(b_map)) =
            (Json::from_value(&a), Json::from_value(&b))
        else {
            unreachable!()
        };
        merge_distinct(&mut a_map, b_map);
        let a = Json::Object(a_map).to_value();
        assert_eq!(
            a["identifier"],
            json!([
                {"value": "O1", "assigner": {"display": "EHR"}},
                {"value": "F1", "system": "urn:x"},
                {"value": "O2"}
            ])
        );
    }

    #[test]
    fn ids_are_the_uuid_crates_v5() {
        for parts in [
            &["bundle", "A|B|1|2024"][..],
            &["Patient", "urn:oid:1.2.3", "MRN 7"],
            &[""],
            &["x"; 40],
        ] {
            let want = uuid::Uuid::new_v5(&super::NAMESPACE, parts.join("|").as_bytes());
            assert_eq!(super::uuid5(parts), want.to_string());
        }
    }

    #[test]
    fn hl7_numbers_are_written_as_fhir_decimals() {
        for (hl7, fhir) in [
            ("5", "5"),
            ("+5", "5"),
            ("-5", "-5"),
            (".5", "0.5"),
            ("-.5", "-0.5"),
            ("5.", "5"),
            ("007", "7"),
            ("0.0", "0.0"),
            ("000", "0"),
            ("1.50", "1.50"),
            (" 12 ", "12"),
        ] {
            assert_eq!(decimal_text(hl7).as_deref(), Some(fhir), "{hl7:?}");
        }
        for bad in [
            "", ".", "-", "+.", "1,234", "1e5", "1.2.3", "12a", "- 5", "NaN", "inf",
        ] {
            assert_eq!(decimal_text(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base64_data_takes_wrapped_base64_and_refuses_the_rest() {
        assert_eq!(
            base64_data("JVBE\r\nRi0x LjQK").as_deref(),
            Some("JVBERi0xLjQK")
        );
        assert_eq!(base64_data("TQ==").as_deref(), Some("TQ=="));
        // Unpadded, as some senders write it: the same bytes, padded.
        assert_eq!(base64_data("TQ").as_deref(), Some("TQ=="));
        assert_eq!(base64_data("TWE").as_deref(), Some("TWE="));
        assert_eq!(base64_data("TWFuT"), None, "4n+1 characters are no bytes");
        assert_eq!(base64_data("<Base64 encoded>"), None);
        assert_eq!(base64_data("TQ=x"), None, "padding only at the end");
        assert_eq!(base64_data("TQ="), None, "whole groups of four");
        assert_eq!(base64_data("T==="), None, "at most two pads");
        assert_eq!(base64_data("  "), None);
    }

    #[test]
    fn names_become_absolute_uris() {
        assert_eq!(coding_system("LN"), "http://loinc.org");
        assert_eq!(coding_system(" sct "), "http://snomed.info/sct");
        assert_eq!(
            coding_system("ISO6392"),
            "http://terminology.hl7.org/CodeSystem/iso639-2"
        );
        assert_eq!(
            coding_system("HL70203"),
            "http://terminology.hl7.org/CodeSystem/v2-0203"
        );
        assert_eq!(
            coding_system("2.16.840.1.113883.6.1"),
            "urn:oid:2.16.840.1.113883.6.1"
        );
        assert_eq!(
            coding_system("http://example.org/cs"),
            "http://example.org/cs"
        );
        assert_eq!(coding_system("HOSP"), "HOSP");
        assert_eq!(code_system_uri("LN"), "http://loinc.org");
        assert_eq!(code_system_uri("L"), "urn:hl7v2:0396:L");
        assert_eq!(
            code_system_uri("99 Local/x"),
            "urn:hl7v2:0396:99%20Local%2Fx"
        );
        // A name with a colon is not a URI unless it has a scheme and no
        // spaces (OBX-3.3 holding a LOINC long name, as some labs send).
        assert_eq!(
            code_system_uri("POST 12H CFST:MCNC:PT"),
            "urn:hl7v2:0396:POST%2012H%20CFST%3AMCNC%3APT"
        );
        assert_eq!(code_system_uri("urn:oid:1.2.3"), "urn:oid:1.2.3");
        assert_eq!(code_system_uri(":x"), "urn:hl7v2:0396:%3Ax");
    }
}
