//! Compiling mapping files into plans, once, at load.
//!
//! Owns turning `mappings/**/*.yaml` into [`Mapping`]s: every HL7 path is
//! parsed, every FHIR target path is resolved against the R4 schema, every
//! expression is typed, every function, sub-mapping, table and alias is
//! looked up, and calls between mappings are checked for cycles. Every
//! problem is a [`ConfigError`] with the file, line and column of the
//! offending text and what was expected there. Nothing is looked up by
//! string at run time except resource aliases.
//!
//! A `kind: resources` file is not compiled alone: its resource blocks are
//! spliced into each message mapping that says `- include: NAME`, compiled
//! there against that message's structure and aliases, their origins and
//! errors naming the included file (an include cycle is an error).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fhir::schema::{Node as SNode, Schema, Slot as Place, is_primitive};
use hl7v2::Path as Hl7Path;
use serde_json::Value;

use super::expr::{self, At, Expr, Lit};
use super::functions::{self, Arg, Func};
use super::structure::Structures;
use super::vocab::{Unmapped, Vocabulary};
use super::yaml::{self, Pos, YNode, YValue};
use crate::config::ConfigError;

/// Where something was written.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The file.
    pub file: Arc<PathBuf>,
    /// Line and column.
    pub pos: Pos,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            crate::config::display_path(&self.file),
            self.pos.line,
            self.pos.column
        )
    }
}

/// The static type of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    /// An HL7 value (field, repetition, component): text-like.
    Hl7,
    /// An HL7 segment.
    Seg,
    /// A segment group.
    Group,
    /// Text.
    Text,
    /// A code.
    Code,
    /// true/false.
    Bool,
    /// A number.
    Number,
    /// FHIR date.
    Date,
    /// FHIR dateTime.
    DateTime,
    /// FHIR instant.
    Instant,
    /// FHIR time.
    Time,
    /// A FHIR complex value of this type (or resource).
    Json(&'static str),
    /// A complex value of a type known only by name (sub-mapping targets).
    Type(String),
    /// Anything.
    Any,
}

impl Ty {
    fn name(&self) -> String {
        match self {
            Ty::Hl7 => "an HL7 value".into(),
            Ty::Seg => "an HL7 segment".into(),
            Ty::Group => "a segment group".into(),
            Ty::Text => "text".into(),
            Ty::Code => "a code".into(),
            Ty::Bool => "a boolean".into(),
            Ty::Number => "a number".into(),
            Ty::Date => "a date".into(),
            Ty::DateTime => "a dateTime".into(),
            Ty::Instant => "an instant".into(),
            Ty::Time => "a time".into(),
            Ty::Json(t) => format!("a {t}"),
            Ty::Type(t) => format!("a {t}"),
            Ty::Any => "a value".into(),
        }
    }

    fn complex_name(&self) -> Option<&str> {
        match self {
            Ty::Json(t) => Some(t),
            Ty::Type(t) => Some(t),
            _ => None,
        }
    }
}

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct CExpr {
    /// What it computes.
    pub node: CNode,
    /// Its type.
    pub ty: Ty,
    /// May give several values.
    pub many: bool,
    /// Where it was written.
    pub origin: Origin,
}

/// Compiled expression nodes.
#[derive(Clone, Debug)]
pub enum CNode {
    /// A constant.
    Lit(Value),
    /// An HL7 path.
    Path(Hl7Path, String),
    /// Components below the current value.
    Rel(Vec<u16>),
    /// Group instances.
    Group(String, Option<u32>),
    /// A function call.
    Func(Func, Vec<CExpr>),
    /// A table name argument, and the table.
    Table(String, std::sync::Arc<super::vocab::Table>),
    /// An alias argument.
    Alias(String),
    /// A policy argument of lookup.
    Policy(Unmapped),
    /// A sub-mapping call: its name, its argument, and (once the registry
    /// has every mapping) the called mapping's place in
    /// [`Registry::list`](super::Registry::list).
    Sub(String, Box<CExpr>, std::sync::OnceLock<usize>),
    /// not
    Not(Box<CExpr>),
    /// and
    And(Box<CExpr>, Box<CExpr>),
    /// or
    Or(Box<CExpr>, Box<CExpr>),
    /// = / !=
    Eq(Box<CExpr>, Box<CExpr>, bool),
    /// in
    In(Box<CExpr>, Vec<CExpr>),
    /// [a, b]
    List(Vec<CExpr>),
}

/// How a target step indexes its element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepIndex {
    /// A singular element, or the first of a repeating one.
    One,
    /// `[+]`: a new element at the end.
    Append,
    /// `[n]`: the n-th (from 0).
    Nth(usize),
}

/// One step of a FHIR target path.
#[derive(Clone, Debug)]
pub struct Step {
    /// JSON property name, as the schema spells it.
    pub name: &'static str,
    /// Its place in the schema (the runtime finds and orders members by it).
    pub place: Place,
    /// Index.
    pub index: StepIndex,
    /// The element repeats (is a JSON array).
    pub array: bool,
}

/// A compiled FHIR target path (relative to the object being built).
#[derive(Clone, Debug)]
pub struct TargetPath {
    /// Steps.
    pub steps: Vec<Step>,
    /// As written.
    pub text: String,
    /// The FHIR type of what is written (`date`, `HumanName`...).
    pub code: String,
}

/// A value to assign.
#[derive(Clone, Debug)]
pub enum RValue {
    /// An expression.
    Expr(CExpr),
    /// A new object built by rules.
    Object(Vec<Rule>),
}

/// A rule's body.
#[derive(Clone, Debug)]
pub enum Body {
    /// `target: value`
    Assign(TargetPath, RValue),
    /// `do: [rules]`
    Many(Vec<Rule>),
    /// `from: Mapping(x)`: the called mapping's result merged into the
    /// object being built; the block exists only if it gives something.
    Merge(CExpr),
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// What stands in for it when the parts it reads are all empty (first:
    /// the one part of a rule read when the rule stands aside).
    pub skip: Option<super::absence::Skip>,
    /// Where it was written.
    pub origin: Origin,
    /// `when:` (boxed, as the rest: a list of rules stays compact).
    pub when: Option<Box<CExpr>>,
    /// `for:`
    pub each: Option<Box<CExpr>>,
    /// What it does.
    pub body: Box<Body>,
    /// The first test of its `when:`, when the runtime can share its read
    /// with the rules beside it.
    pub guard: Option<Box<super::absence::Guard>>,
}

/// A segment or data-type map.
#[derive(Clone, Debug)]
pub struct RuleMap {
    /// The segment id or data type it reads (informative).
    pub source: String,
    /// The FHIR type or resource it builds.
    pub target: String,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// A resource block of a message map.
#[derive(Clone, Debug)]
pub struct ResourceBlock {
    /// Resource type.
    pub resource: &'static str,
    /// Alias (`as:`), or the resource type in lower case.
    pub alias: String,
    /// `id:` (hashed into a UUIDv5).
    pub id: Option<CExpr>,
    /// `from:` sub-mapping calls, merged.
    pub from: Vec<CExpr>,
    /// `set:` rules applied after.
    pub set: Vec<Rule>,
    /// `request:` how a transaction Bundle writes it.
    pub request: Request,
    /// The schema place of its `id`.
    pub id_place: Place,
}

/// How a transaction Bundle writes a resource (a block's `request:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Request {
    /// `update` (the default): `PUT Type/id`. The message is the source of
    /// truth for the resource (an ADT for its patient and visit).
    #[default]
    Update,
    /// `create`: `POST Type` with `ifNoneExist` on the resource's first
    /// identifier. The message only refers to a record another feed owns
    /// (a lab result's patient): it is created when missing and never
    /// overwritten with the thinner copy this message carries. Without an
    /// identifier to search by, the block is written as `update`.
    Create,
}

/// What a block does.
#[derive(Clone, Debug)]
pub enum BlockKind {
    /// Makes a resource.
    Resource(Box<ResourceBlock>),
    /// Nested blocks (under `for:`/`when:`).
    Nested(Vec<Block>),
}

/// One entry of `resources:`.
#[derive(Clone, Debug)]
pub struct Block {
    /// Where it was written.
    pub origin: Origin,
    /// `when:`
    pub when: Option<CExpr>,
    /// `for:`
    pub each: Option<CExpr>,
    /// What it does.
    pub kind: BlockKind,
    /// Its name in default ids (alias or segment group, and its place among
    /// the blocks of that name: `location1`, `ORDER1`).
    pub name: String,
}

/// What to do with segments no rule reads that the structure does not know (Z-segments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZPolicy {
    /// Keep each as an extension (raw text) on the `patient` resource, else the first.
    Keep,
    /// Fail the message.
    Error,
    /// Drop them (they are still stored with the message).
    Ignore,
}

/// A message map.
#[derive(Clone, Debug)]
pub struct MessageMap {
    /// Structure name for groups.
    pub structure: Option<String>,
    /// Blocks in order.
    pub blocks: Vec<Block>,
    /// Z-segment policy.
    pub z_segments: ZPolicy,
    /// Default Bundle type.
    pub bundle_type: BundleType,
    /// Segments the message must have (`requires:`): without one the
    /// message fails up front, naming it, instead of as an invalid resource.
    pub requires: Vec<String>,
}

/// Bundle types the entry mappings produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleType {
    /// A transaction (PUT by id: idempotent on redelivery).
    Transaction,
    /// A message (MessageHeader first).
    Message,
}

/// A router: picks a message mapping by MSH-9.
#[derive(Clone, Debug)]
pub struct Router {
    /// In file order; the routes by type are tried before those by structure.
    pub routes: Vec<Route>,
}

/// One route of a router.
#[derive(Clone, Debug)]
pub struct Route {
    /// What it matches: message types (`type:`, MSH-9.1^MSH-9.2 patterns
    /// such as `ADT^A0*`), or message structures (`structure:`, MSH-9.3,
    /// for events a site made up in a standard structure: `ADT^Z99^ADT_A01`).
    pub by: RouteBy,
    /// Patterns, upper case.
    pub patterns: Vec<String>,
    /// The message mapping it uses.
    pub target: String,
    /// Where it is written.
    pub origin: Origin,
}

/// What a route matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteBy {
    /// MSH-9.1^MSH-9.2.
    Type,
    /// MSH-9.3.
    Structure,
}

/// What kind of mapping.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Entry mapping.
    Router(Router),
    /// Message → Bundle.
    Message(MessageMap),
    /// Segment → resource (or type).
    Segment(RuleMap),
    /// Data type → FHIR type.
    Datatype(RuleMap),
}

/// One compiled mapping.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// Name.
    pub name: String,
    /// File.
    pub file: Arc<PathBuf>,
    /// Body.
    pub kind: Kind,
    /// Fields deliberately not mapped (`ignore:`), as (segment id, field; 0 = whole segment).
    pub ignore: Vec<(String, u16)>,
}

/// Header of a file, read in the first pass.
struct Header {
    name: String,
    kind: String,
    target: String,
    root: YNode,
    file: Arc<PathBuf>,
}

/// Compiles every mapping under `dir` (except `vocabulary/` and `tests/`).
pub fn compile_dir(
    dir: &Path,
    vocab: &Vocabulary,
    structures: &Structures,
) -> Result<BTreeMap<String, Arc<Mapping>>, Vec<ConfigError>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files);
    files.sort();
    let mut errors = Vec::new();
    let mut headers: Vec<Header> = Vec::new();
    let mut names: HashMap<String, Arc<PathBuf>> = HashMap::new();
    for f in files {
        let text = match std::fs::read_to_string(&f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(ConfigError::file(&f, format!("cannot read: {e}")));
                continue;
            }
        };
        let root = match yaml::parse(&text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(ConfigError::from_yaml(&f, &e));
                continue;
            }
        };
        let file = Arc::new(f);
        let err_at = |n: &YNode, m: String| ConfigError {
            file: file.as_ref().clone(),
            line: Some(n.pos.line),
            column: Some(n.pos.column),
            message: m,
        };
        let Some(name) = root
            .get("mapping")
            .and_then(|n| n.as_str())
            .map(String::from)
        else {
            errors.push(err_at(&root, "`mapping: NAME` is required".into()));
            continue;
        };
        let kind = root
            .get("kind")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        if !matches!(
            kind.as_str(),
            "router" | "message" | "segment" | "datatype" | "resources"
        ) {
            let at = root.get("kind").unwrap_or(&root);
            errors.push(err_at(
                at,
                format!(
                    "kind: expected router, message, segment, datatype or resources, found {kind:?}"
                ),
            ));
            continue;
        }
        if let Some(other) = names.get(&name) {
            let at = root.get("mapping").unwrap_or(&root);
            errors.push(err_at(
                at,
                format!(
                    "mapping {name:?} is also defined in {}",
                    crate::config::display_path(other)
                ),
            ));
            continue;
        }
        names.insert(name.clone(), file.clone());
        let target = root
            .get("target")
            .and_then(|n| n.as_str())
            .map(|t| t.trim_start_matches("fhir/").to_string())
            .unwrap_or_else(|| "Bundle".into());
        headers.push(Header {
            name,
            kind,
            target,
            root,
            file,
        });
    }
    let sigs: HashMap<String, (String, String)> = headers
        .iter()
        .filter(|h| h.kind != "resources")
        .map(|h| (h.name.clone(), (h.kind.clone(), h.target.clone())))
        .collect();
    let shared: HashMap<&str, &Header> = headers
        .iter()
        .filter(|h| h.kind == "resources")
        .map(|h| (h.name.as_str(), h))
        .collect();
    let mut out = BTreeMap::new();
    for h in &headers {
        if h.kind == "resources" {
            // Compiled where a message mapping includes it, against that
            // message's structure; alone it has no segments to read.
            continue;
        }
        let mut c = Compiler {
            file: h.file.clone(),
            schema: Schema::r4(),
            vocab,
            structures,
            mappings: &sigs,
            shared: &shared,
            including: Vec::new(),
            errors: Vec::new(),
            calls: HashSet::new(),
            aliases: HashSet::new(),
        };
        if let Some(m) = c.mapping(h) {
            out.insert(h.name.clone(), (Arc::new(m), c.calls.clone()));
        }
        errors.extend(c.errors);
    }
    // Cycles between mappings.
    for (name, (m, _)) in &out {
        let mut path = vec![name.clone()];
        if let Some(cycle) = find_cycle(name, &out, &mut path, &mut HashSet::new()) {
            let root = headers
                .iter()
                .find(|h| &h.name == name)
                .map(|h| h.root.pos)
                .unwrap_or_default();
            errors.push(ConfigError {
                file: m.file.as_ref().clone(),
                line: Some(root.line),
                column: Some(root.column),
                message: format!("mappings call each other in a cycle: {}", cycle.join(" → ")),
            });
            break;
        }
    }
    if errors.is_empty() {
        Ok(out.into_iter().map(|(k, (m, _))| (k, m)).collect())
    } else {
        // A `resources` file is compiled in every message that includes it:
        // its errors are said once.
        let mut seen = HashSet::new();
        errors.retain(|e| seen.insert(e.to_string()));
        Err(errors)
    }
}

/// The keys a mapping file of some kind may have: the header every file
/// has, then that kind's own.
fn header_keys<'k>(own: &[&'k str]) -> Vec<&'k str> {
    let mut keys = vec!["mapping", "kind", "description", "source", "target"];
    keys.extend_from_slice(own);
    keys
}

type Compiled = BTreeMap<String, (Arc<Mapping>, HashSet<String>)>;

fn find_cycle(
    at: &str,
    all: &Compiled,
    path: &mut Vec<String>,
    done: &mut HashSet<String>,
) -> Option<Vec<String>> {
    if done.contains(at) {
        return None;
    }
    let (_, calls) = all.get(at)?;
    for c in calls {
        if let Some(i) = path.iter().position(|p| p == c) {
            let mut cycle = path[i..].to_vec();
            cycle.push(c.clone());
            return Some(cycle);
        }
        path.push(c.clone());
        if let Some(found) = find_cycle(c, all, path, done) {
            return Some(found);
        }
        path.pop();
    }
    done.insert(at.to_string());
    None
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if dir == root && (name == "vocabulary" || name == "tests") {
                continue;
            }
            collect(root, &p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca.to_lowercase().ne(cb.to_lowercase()));
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub fn suggest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let best = candidates
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!("; did you mean {c:?}?"),
        None => String::new(),
    }
}

/// Where a target path starts: a definition node.
#[derive(Clone, Copy)]
struct TargetCtx<'s> {
    node: SNode<'s>,
}

/// The type an assignment target holds.
#[derive(Clone, Debug)]
struct Slot<'s> {
    code: &'static str,
    node: Option<SNode<'s>>,
    array: bool,
    last_index: StepIndex,
    name: String,
}

struct Compiler<'a> {
    file: Arc<PathBuf>,
    schema: &'static Schema,
    vocab: &'a Vocabulary,
    structures: &'a Structures,
    mappings: &'a HashMap<String, (String, String)>,
    /// `kind: resources` files: resource blocks message mappings include.
    shared: &'a HashMap<&'a str, &'a Header>,
    /// The `include:` chain being compiled (to refuse a cycle).
    including: Vec<String>,
    errors: Vec<ConfigError>,
    /// Mappings this one calls.
    calls: HashSet<String>,
    /// Aliases defined (message maps).
    aliases: HashSet<String>,
}

impl Compiler<'_> {
    fn origin(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.clone(),
            pos,
        }
    }

    fn err(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(ConfigError {
            file: self.file.as_ref().clone(),
            line: Some(pos.line),
            column: Some(pos.column),
            message: message.into(),
        });
    }

    fn mapping(&mut self, h: &Header) -> Option<Mapping> {
        let root = &h.root;
        let own: &[&str] = match h.kind.as_str() {
            "router" => &["routes"],
            "message" => &["resources", "ignore", "z_segments", "bundle", "requires"],
            _ => &["rules", "ignore"],
        };
        let allowed = header_keys(own);
        if let YValue::Map(entries) = &root.value {
            self.known_keys(entries, &allowed, &format!("a {} mapping", h.kind));
        }
        let ignore = self.ignore(root.get("ignore"));
        let kind = match h.kind.as_str() {
            "router" => Kind::Router(self.router(root)),
            "message" => Kind::Message(self.message(root)),
            kind => {
                let target = h.target.clone();
                let ctx = self.target_root(
                    &target,
                    root.get("target").map(|n| n.pos).unwrap_or(root.pos),
                )?;
                let source = root
                    .get("source")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .trim_start_matches("hl7v2/")
                    .to_string();
                let here = if kind == "segment" { Ty::Seg } else { Ty::Hl7 };
                let mut rules = match root.get("rules") {
                    Some(r) => self.rules(r, ctx, &here),
                    None => {
                        self.err(root.pos, "`rules:` is required");
                        Vec::new()
                    }
                };
                super::absence::annotate(
                    &mut rules,
                    (kind == "segment").then_some(source.as_str()),
                );
                let map = RuleMap {
                    source,
                    target,
                    rules,
                };
                if kind == "segment" {
                    Kind::Segment(map)
                } else {
                    Kind::Datatype(map)
                }
            }
        };
        Some(Mapping {
            name: h.name.clone(),
            file: self.file.clone(),
            kind,
            ignore,
        })
    }

    fn ignore(&mut self, n: Option<&YNode>) -> Vec<(String, u16)> {
        let Some(n) = n else { return Vec::new() };
        let YValue::Seq(items) = &n.value else {
            self.err(
                n.pos,
                "ignore: expected a list of HL7 fields or segments, e.g. [PID-10, SFT]",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for it in items {
            let Some(text) = it.as_str() else {
                self.err(
                    it.pos,
                    "ignore: expected a field such as PID-10 or a segment such as SFT",
                );
                continue;
            };
            match text.parse::<Hl7Path>() {
                Ok(p) if p.component.is_none() => {
                    out.push((p.segment_id().to_string(), p.field.unwrap_or(0)))
                }
                Ok(_) => self.err(
                    it.pos,
                    format!("ignore: {text:?}: name a whole field (PID-10) or segment (SFT)"),
                ),
                Err(e) => self.err(
                    it.pos.shift(e.column.saturating_sub(1)),
                    format!("ignore: {e}"),
                ),
            }
        }
        out
    }

    fn target_root(&mut self, target: &str, pos: Pos) -> Option<TargetCtx<'static>> {
        let (def_name, _) = target.split_once('.').unwrap_or((target, ""));
        let Some(def) = self.schema.def(def_name) else {
            let hint = suggest(def_name, self.schema.defs().map(|d| d.name));
            self.err(
                pos,
                format!("target: {target:?} is not an R4 resource or data type{hint}"),
            );
            return None;
        };
        if is_primitive(def.name) {
            self.err(pos, format!("target: {target:?} is a primitive; a mapping builds a resource or a complex data type (a primitive is one expression, e.g. `- family: upper(XPN.1)`)"));
            return None;
        }
        let Some(node) = self.schema.node_at(def, target) else {
            self.err(
                pos,
                format!("target: {target:?} is not an element of {def_name}"),
            );
            return None;
        };
        Some(TargetCtx { node })
    }

    fn router(&mut self, root: &YNode) -> Router {
        let mut routes = Vec::new();
        let Some(r) = root.get("routes") else {
            self.err(root.pos, "`routes:` is required in a router");
            return Router { routes };
        };
        let YValue::Seq(items) = &r.value else {
            self.err(
                r.pos,
                "routes: expected a list of {type: [...], use: MAPPING}",
            );
            return Router { routes };
        };
        for it in items {
            let (by, key) = match (it.get("type"), it.get("structure")) {
                (Some(_), Some(_)) => {
                    self.err(
                        it.pos,
                        "a route has `type:` or `structure:`, not both (make two routes)",
                    );
                    continue;
                }
                (None, Some(n)) => (RouteBy::Structure, n),
                (Some(n), None) => (RouteBy::Type, n),
                (None, None) => {
                    self.err(
                        it.pos,
                        "a route needs `type:` (patterns such as ADT^A0*) or `structure:` (MSH-9.3, such as ADT_A01)",
                    );
                    continue;
                }
            };
            let patterns: Vec<String> = match &key.value {
                YValue::Scalar(s) => vec![s.to_ascii_uppercase()],
                YValue::Seq(v) => v
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_ascii_uppercase))
                    .collect(),
                _ => {
                    self.err(key.pos, "expected a pattern or a list of patterns");
                    continue;
                }
            };
            let Some(use_node) = it.get("use") else {
                self.err(it.pos, "a route needs `use:` (a message mapping)");
                continue;
            };
            let name = use_node.as_str().unwrap_or("").to_string();
            match self.mappings.get(&name) {
                Some((k, _)) if k == "message" => {}
                Some((k, _)) => self.err(
                    use_node.pos,
                    format!("{name:?} is a {k} mapping; a route uses a message mapping"),
                ),
                None => {
                    let hint = suggest(&name, self.mappings.keys().map(String::as_str));
                    self.err(use_node.pos, format!("no mapping named {name:?}{hint}"));
                }
            }
            self.calls.insert(name.clone());
            routes.push(Route {
                by,
                patterns,
                target: name,
                origin: self.origin(it.pos),
            });
        }
        Router { routes }
    }

    fn message(&mut self, root: &YNode) -> MessageMap {
        let structure = root
            .get("source")
            .and_then(|n| n.as_str())
            .map(|s| s.trim_start_matches("hl7v2/").to_string());
        if let (Some(s), Some(n)) = (&structure, root.get("source"))
            && self.structures.get(s).is_none()
        {
            self.err(
                n.pos,
                format!("source: no message structure {s:?} in mappings/structures.txt"),
            );
        }
        let z_segments = match root.get("z_segments").and_then(|n| n.as_str()) {
            None | Some("keep") => ZPolicy::Keep,
            Some("error") => ZPolicy::Error,
            Some("ignore") => ZPolicy::Ignore,
            Some(other) => {
                let pos = root.get("z_segments").map(|n| n.pos).unwrap_or(root.pos);
                self.err(
                    pos,
                    format!("z_segments: expected keep, error or ignore, found {other:?}"),
                );
                ZPolicy::Keep
            }
        };
        let bundle_type = match root.get("bundle").and_then(|n| n.as_str()) {
            None | Some("transaction") => BundleType::Transaction,
            Some("message") => BundleType::Message,
            Some(other) => {
                let pos = root.get("bundle").map(|n| n.pos).unwrap_or(root.pos);
                self.err(
                    pos,
                    format!("bundle: expected transaction or message, found {other:?}"),
                );
                BundleType::Transaction
            }
        };
        // Aliases first, so refs can point forward.
        if let Some(r) = root.get("resources") {
            self.collect_aliases(r);
        }
        let blocks = match root.get("resources") {
            Some(r) => self.blocks(r, &Ty::Group),
            None => {
                self.err(root.pos, "`resources:` is required in a message mapping");
                Vec::new()
            }
        };
        let mut requires = Vec::new();
        if let Some(n) = root.get("requires") {
            match &n.value {
                YValue::Seq(items) => {
                    for it in items {
                        match it.as_str() {
                            Some(s)
                                if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                            {
                                requires.push(s.to_string())
                            }
                            _ => {
                                self.err(it.pos, "requires: expected segment ids, e.g. [PID, TXA]")
                            }
                        }
                    }
                }
                _ => self.err(
                    n.pos,
                    "requires: expected a list of segment ids, e.g. [PID, TXA]",
                ),
            }
        }
        MessageMap {
            structure,
            blocks,
            z_segments,
            bundle_type,
            requires,
        }
    }

    fn collect_aliases(&mut self, n: &YNode) {
        if let YValue::Seq(items) = &n.value {
            for it in items {
                if let Some(rt) = it.get("resource").and_then(|r| r.as_str()) {
                    let alias = it
                        .get("as")
                        .and_then(|a| a.as_str())
                        .map(String::from)
                        .unwrap_or_else(|| rt.to_lowercase());
                    self.aliases.insert(alias);
                }
                if let Some(inner) = it.get("resources") {
                    self.collect_aliases(inner);
                }
                if let Some(h) = it
                    .get("include")
                    .and_then(|n| n.as_str())
                    .and_then(|name| self.shared.get(name))
                    && !self.including.contains(&h.name)
                    && let Some(inner) = h.root.get("resources")
                {
                    self.including.push(h.name.clone());
                    self.collect_aliases(inner);
                    self.including.pop();
                }
            }
        }
    }

    /// The blocks of a `kind: resources` file, compiled here (in the
    /// including message's structure), their errors and origins naming
    /// that file.
    fn include(&mut self, n: &YNode, here: &Ty) -> Vec<Block> {
        let Some(name) = n.as_str() else {
            self.err(
                n.pos,
                "include: expected the name of a `kind: resources` mapping",
            );
            return Vec::new();
        };
        let Some(h) = self.shared.get(name).copied() else {
            let hint = suggest(name, self.shared.keys().copied());
            self.err(
                n.pos,
                format!("include: no `kind: resources` mapping named {name:?}{hint}"),
            );
            return Vec::new();
        };
        if self.including.iter().any(|i| i == name) {
            let mut chain = self.including.clone();
            chain.push(name.to_string());
            self.err(
                n.pos,
                format!(
                    "include: resource lists include each other in a cycle: {}",
                    chain.join(" → ")
                ),
            );
            return Vec::new();
        }
        // From here on, what is said is said of the included file.
        let outer = std::mem::replace(&mut self.file, h.file.clone());
        if let YValue::Map(entries) = &h.root.value {
            self.known_keys(entries, &header_keys(&["resources"]), "a resources mapping");
        }
        let blocks = match h.root.get("resources") {
            Some(list) => {
                self.including.push(name.to_string());
                let blocks = self.blocks(list, here);
                self.including.pop();
                blocks
            }
            None => {
                self.err(
                    h.root.pos,
                    "`resources:` is required in a resources mapping",
                );
                Vec::new()
            }
        };
        self.file = outer;
        blocks
    }

    /// Reports keys of a YAML mapping that are not in `allowed`, with a suggestion.
    fn known_keys(&mut self, entries: &[(YNode, YNode)], allowed: &[&str], what: &str) {
        for (k, _) in entries {
            let key = k.as_str().unwrap_or("");
            if !allowed.contains(&key) {
                let hint = suggest(key, allowed.iter().copied());
                self.err(
                    k.pos,
                    format!(
                        "unknown key {key:?} in {what} (expected {}){hint}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn blocks(&mut self, n: &YNode, here: &Ty) -> Vec<Block> {
        let YValue::Seq(items) = &n.value else {
            self.err(n.pos, "resources: expected a list of resource blocks");
            return Vec::new();
        };
        let mut out = Vec::new();
        for it in items {
            if let Some(name) = it.get("include") {
                if let YValue::Map(entries) = &it.value {
                    self.known_keys(entries, &["include", "note"], "an include");
                }
                out.extend(self.include(name, here));
                continue;
            }
            let allowed = [
                "resource",
                "as",
                "id",
                "from",
                "set",
                "when",
                "for",
                "resources",
                "note",
                "request",
            ];
            if let YValue::Map(entries) = &it.value {
                self.known_keys(entries, &allowed, "a resource block");
            } else {
                self.err(
                    it.pos,
                    "a resource block is a mapping with `resource:` or `resources:`",
                );
                continue;
            }
            let each = it.get("for").and_then(|f| self.expr_node(f, here));
            let inner = match &each {
                Some(e) => e.ty.clone(),
                None => here.clone(),
            };
            let when = it.get("when").and_then(|w| self.expr_node(w, &inner));
            let kind = if let Some(rt_node) = it.get("resource") {
                let rt = rt_node.as_str().unwrap_or("");
                let Some(def) = self.schema.def(rt).filter(|_| self.schema.is_resource(rt)) else {
                    let hint = suggest(
                        rt,
                        self.schema
                            .defs()
                            .filter(|d| self.schema.is_resource(d.name))
                            .map(|d| d.name),
                    );
                    self.err(
                        rt_node.pos,
                        format!("resource: {rt:?} is not an R4 resource type{hint}"),
                    );
                    continue;
                };
                let alias = it
                    .get("as")
                    .and_then(|a| a.as_str())
                    .map(String::from)
                    .unwrap_or_else(|| rt.to_lowercase());
                let ctx = TargetCtx {
                    node: SNode::root(def),
                };
                let id = it.get("id").and_then(|i| self.expr_node(i, &inner));
                let mut from = Vec::new();
                if let Some(f) = it.get("from") {
                    let list: Vec<&YNode> = match &f.value {
                        YValue::Seq(v) => v.iter().collect(),
                        _ => vec![f],
                    };
                    for x in list {
                        if let Some(e) = self.expr_node(x, &inner) {
                            let ok = e.ty.complex_name().is_some_and(|t| t == def.name);
                            if !ok {
                                self.err(
                                    x.pos,
                                    format!(
                                        "from: expected a mapping that makes a {}, got {}",
                                        def.name,
                                        e.ty.name()
                                    ),
                                );
                            }
                            from.push(e);
                        }
                    }
                }
                let set = match it.get("set") {
                    Some(s) => self.rules(s, ctx, &inner),
                    None => Vec::new(),
                };
                let request = match it.get("request").map(|r| (r, r.as_str())) {
                    None | Some((_, Some("update"))) => Request::Update,
                    Some((_, Some("create"))) => Request::Create,
                    Some((r, _)) => {
                        self.err(
                            r.pos,
                            "request: expected `update` (PUT, the default) or `create` (POST with ifNoneExist on the first identifier)",
                        );
                        Request::Update
                    }
                };
                BlockKind::Resource(Box::new(ResourceBlock {
                    resource: def.name,
                    alias,
                    id,
                    from,
                    set,
                    request,
                    id_place: self
                        .schema
                        .slot(SNode::root(def), "id")
                        .map_or(Place::UNKNOWN, |(p, _, _)| p),
                }))
            } else if let Some(inner_blocks) = it.get("resources") {
                BlockKind::Nested(self.blocks(inner_blocks, &inner))
            } else {
                self.err(
                    it.pos,
                    "a resource block needs `resource:` (or nested `resources:`)",
                );
                continue;
            };
            out.push(Block {
                origin: self.origin(it.pos),
                when,
                each,
                kind,
                name: String::new(),
            });
        }
        // Each block's name for default ids: its alias (nested blocks: the
        // segment group they go through) and its place among the blocks of
        // that name, so adding a block for something else to a mapping does
        // not give unrelated resources new ids.
        let mut seen: Vec<(String, usize)> = Vec::new();
        for b in &mut out {
            let base = match (&b.kind, b.each.as_ref().map(|e| &e.node)) {
                (BlockKind::Resource(rb), _) => rb.alias.clone(),
                (BlockKind::Nested(_), Some(CNode::Group(group, _))) => group.clone(),
                (BlockKind::Nested(_), _) => String::new(),
            };
            let nth = match seen.iter_mut().find(|(n, _)| *n == base) {
                Some((_, k)) => {
                    *k += 1;
                    *k
                }
                None => {
                    seen.push((base.clone(), 1));
                    1
                }
            };
            b.name = format!("{base}{nth}");
        }
        out
    }

    fn rules(&mut self, n: &YNode, ctx: TargetCtx<'static>, here: &Ty) -> Vec<Rule> {
        let items: Vec<&YNode> = match &n.value {
            YValue::Seq(v) => v.iter().collect(),
            YValue::Map(_) => vec![n],
            _ => {
                self.err(
                    n.pos,
                    format!("expected a list of rules, found {}", n.kind()),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for it in items {
            let YValue::Map(entries) = &it.value else {
                self.err(
                    it.pos,
                    "a rule is `target: expression`, with optional `when:` and `for:`",
                );
                continue;
            };
            if entries
                .iter()
                .any(|(k, _)| matches!(k.as_str(), Some("for" | "when" | "do" | "from")))
                || entries.len() == 1
            {
                if let Some(r) = self.rule(it, entries, ctx, here) {
                    out.push(r);
                }
            } else {
                // A mapping of several targets: one rule each.
                for (k, v) in entries {
                    if k.as_str() == Some("note") {
                        continue;
                    }
                    if let Some(r) = self.assign(k, v, ctx, here, it.pos) {
                        out.push(Rule {
                            origin: self.origin(k.pos),
                            when: None,
                            each: None,
                            body: Box::new(r),
                            skip: None,
                            guard: None,
                        });
                    }
                }
            }
        }
        out
    }

    fn rule(
        &mut self,
        it: &YNode,
        entries: &[(YNode, YNode)],
        ctx: TargetCtx<'static>,
        here: &Ty,
    ) -> Option<Rule> {
        let mut each = None;
        let mut when_node = None;
        let mut do_node = None;
        let mut from_node = None;
        let mut targets = Vec::new();
        for (k, v) in entries {
            match k.as_str() {
                Some("for") => each = self.expr_node(v, here),
                Some("when") => when_node = Some(v),
                Some("do") => do_node = Some(v),
                Some("from") => from_node = Some(v),
                Some("note") => {}
                _ => targets.push((k, v)),
            }
        }
        let inner = match &each {
            Some(e) => e.ty.clone(),
            None => here.clone(),
        };
        let when = when_node.and_then(|w| self.expr_node(w, &inner));
        if let Some(w) = &when
            && w.ty != Ty::Bool
            && w.ty != Ty::Any
        {
            // Any value can be a condition (present = true), but say what it means.
        }
        if let Some(f) = from_node {
            if do_node.is_some() || !targets.is_empty() {
                self.err(
                    f.pos,
                    "`from:` is a rule of its own: put the other targets in rules beside it",
                );
                return None;
            }
            let e = self.expr_node(f, &inner)?;
            let want = ctx.node.def.name;
            match (&e.node, e.ty.complex_name()) {
                (CNode::Sub(..), Some(t)) if t == want && ctx.node.path == want => {}
                (CNode::Sub(..), got) => {
                    self.err(
                        f.pos,
                        format!(
                            "`from:` here merges into {}, but this mapping makes {}",
                            ctx.node.path,
                            got.unwrap_or("something else")
                        ),
                    );
                    return None;
                }
                _ => {
                    self.err(
                        f.pos,
                        "`from:` takes a mapping call, e.g. `from: XTN_ContactPoint(.)`",
                    );
                    return None;
                }
            }
            return Some(Rule {
                origin: self.origin(it.pos),
                when: when.map(Box::new),
                each: each.map(Box::new),
                body: Box::new(Body::Merge(e)),
                skip: None,
                guard: None,
            });
        }
        let body = match (do_node, targets.len()) {
            (Some(d), 0) => Body::Many(self.rules(d, ctx, &inner)),
            (Some(d), _) => {
                self.err(d.pos, "a rule has either `do:` or one target, not both");
                return None;
            }
            (None, 1) => {
                let (k, v) = targets[0];
                self.assign(k, v, ctx, &inner, it.pos)?
            }
            (None, 0) => {
                self.err(
                    it.pos,
                    "this rule has no target (e.g. `birthDate: date(PID-7)`) and no `do:`",
                );
                return None;
            }
            (None, _) => {
                self.err(
                    targets[1].0.pos,
                    "a rule with `for:` or `when:` has one target; use `do:` for several",
                );
                return None;
            }
        };
        Some(Rule {
            origin: self.origin(it.pos),
            when: when.map(Box::new),
            each: each.map(Box::new),
            body: Box::new(body),
            skip: None,
            guard: None,
        })
    }

    /// Resolves a target path against the schema.
    fn target(
        &mut self,
        k: &YNode,
        ctx: TargetCtx<'static>,
    ) -> Option<(TargetPath, Slot<'static>)> {
        let text = k.as_str().unwrap_or("").trim().to_string();
        let mut node = ctx.node;
        let mut steps = Vec::new();
        let mut slot: Option<Slot<'static>> = None;
        let mut col = 0usize;
        let parts: Vec<&str> = text.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let pos = k.pos.shift(col);
            col += part.len() + 1;
            if let Some(prev) = &slot
                && prev.node.is_none()
            {
                self.err(pos, format!("{} is {} (a primitive): it has no element {part:?}; extensions of a primitive go in _{}.extension", prev.name, a(prev.code), prev.name));
                return None;
            }
            let (name, index) = match part.split_once('[') {
                // `deceased[x]` is the spec's name for a choice, not an index: the lookup below explains.
                Some(_) if part.ends_with("[x]") => (*part, StepIndex::One),
                Some((n, rest)) => {
                    let idx = rest.trim_end_matches(']');
                    let index = match idx {
                        "+" => StepIndex::Append,
                        n if n.parse::<usize>().is_ok() => StepIndex::Nth(n.parse().unwrap_or(0)),
                        _ => {
                            self.err(
                                pos.shift(n.len()),
                                format!("[{idx}]: expected [+] (append) or [n] (counting from 0)"),
                            );
                            return None;
                        }
                    };
                    (n, index)
                }
                None => (*part, StepIndex::One),
            };
            let (place, el, ty, prim_ext) = if let Some(base) = name.strip_prefix('_') {
                match self.schema.slot(node, base) {
                    Some((place, el, ty))
                        if ty
                            .or(el.types.first())
                            .is_some_and(|t| is_primitive(t.code)) =>
                    {
                        (place.with_extension(true), el, ty, true)
                    }
                    Some(_) => {
                        self.err(
                            pos,
                            format!("_{base}: only primitive elements have a `_` companion"),
                        );
                        return None;
                    }
                    None => {
                        self.err(pos, format!("{} has no element {base:?}", node.path));
                        return None;
                    }
                }
            } else {
                match self.schema.slot(node, name) {
                    Some((place, el, ty)) => (place, el, ty, false),
                    None => {
                        let choice = self
                            .schema
                            .children(node)
                            .find(|e| e.choice && name == format!("{}[x]", e.name));
                        let msg = match choice {
                            Some(e) => format!(
                                "{name} is a choice: write the type, e.g. {}",
                                e.types
                                    .iter()
                                    .take(3)
                                    .map(|t| e.json_name(t))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                            None => {
                                let names: Vec<String> = self
                                    .schema
                                    .children(node)
                                    .flat_map(|e| {
                                        if e.choice {
                                            e.types.iter().map(|t| e.json_name(t)).collect()
                                        } else {
                                            vec![e.name.to_string()]
                                        }
                                    })
                                    .collect();
                                let hint = suggest(name, names.iter().map(String::as_str));
                                format!("{} has no element {name:?}{hint}", node.path)
                            }
                        };
                        self.err(pos, msg);
                        return None;
                    }
                }
            };
            let array = el.is_array();
            if index != StepIndex::One && !array {
                self.err(
                    pos,
                    format!("{name} holds one value: [+] and [n] are for repeating elements"),
                );
                return None;
            }
            let ty = ty.or(el.types.first());
            let code = if el.content_ref.is_some() {
                "BackboneElement"
            } else {
                ty.map(|t| t.code).unwrap_or("Element")
            };
            let (next, code) = if prim_ext {
                (self.schema.root("Element"), "Element")
            } else if code == "Resource" {
                (None, "Resource")
            } else {
                (self.schema.descend(node, el, ty), code)
            };
            // The schema's own spelling of the name (a `'static` key).
            let base = name.trim_start_matches('_');
            let key = el
                .json_names
                .iter()
                .position(|n| *n == base)
                .map(|i| {
                    if prim_ext {
                        el.extension_names[i]
                    } else {
                        el.json_names[i]
                    }
                })
                .unwrap_or(el.name);
            steps.push(Step {
                name: key,
                place,
                index,
                array,
            });
            slot = Some(Slot {
                code,
                node: next,
                array,
                last_index: index,
                name: name.to_string(),
            });
            if let Some(n) = next {
                node = n;
            } else if i + 1 < parts.len() && code == "Resource" {
                self.err(pos, format!("{name} holds whole resources: build them with a mapping, not a path into them"));
                return None;
            }
        }
        let slot = slot?;
        Some((
            TargetPath {
                steps,
                text,
                code: slot.code.to_string(),
            },
            slot,
        ))
    }

    fn assign(
        &mut self,
        k: &YNode,
        v: &YNode,
        ctx: TargetCtx<'static>,
        here: &Ty,
        _rule_pos: Pos,
    ) -> Option<Body> {
        let (path, slot) = self.target(k, ctx)?;
        let value = match &v.value {
            YValue::Map(_) | YValue::Seq(_) => {
                let Some(node) = slot.node else {
                    self.err(
                        v.pos,
                        format!(
                            "{} is {}: give it an expression, not a block",
                            slot.name,
                            a(slot.code)
                        ),
                    );
                    return None;
                };
                RValue::Object(self.rules(v, TargetCtx { node }, here))
            }
            YValue::Null => {
                self.err(v.pos, format!("{}: no value given", path.text));
                return None;
            }
            YValue::Scalar(_) => {
                let e = self.expr_node(v, here)?;
                self.check_assign(&slot, &e, v.pos);
                RValue::Expr(e)
            }
        };
        Some(Body::Assign(path, value))
    }

    fn check_assign(&mut self, slot: &Slot<'_>, e: &CExpr, pos: Pos) {
        if e.many && !slot.array {
            self.err(pos, format!("this gives many values but {} holds one (use first(...), or a target that repeats)", slot.name));
            return;
        }
        if e.many && slot.last_index != StepIndex::Append && slot.array {
            self.err(
                pos,
                format!("this gives many values: append them with {}[+]", slot.name),
            );
            return;
        }
        let code = slot.code;
        let ok: Result<(), String> = match (&e.ty, code) {
            (Ty::Any, _) => Ok(()),
            (_, "Resource") => match e.ty.complex_name() {
                Some(t) if self.schema.is_resource(t) => Ok(()),
                _ => Err(format!(
                    "{} holds a resource; got {}",
                    slot.name,
                    e.ty.name()
                )),
            },
            (Ty::Seg | Ty::Group, _) => Err(format!(
                "{} cannot hold {}: map it with a mapping call or pick a field, e.g. PID-5",
                slot.name,
                e.ty.name()
            )),
            (_, "date") => match e.ty {
                Ty::Date => Ok(()),
                Ty::Hl7 | Ty::Text => {
                    Err(format!("{} is a date; convert with date(...)", slot.name))
                }
                _ => Err(format!("{} is a date; got {}", slot.name, e.ty.name())),
            },
            (_, "dateTime") => match e.ty {
                Ty::Date | Ty::DateTime | Ty::Instant => Ok(()),
                Ty::Hl7 | Ty::Text => Err(format!(
                    "{} is a dateTime; convert with datetime(...)",
                    slot.name
                )),
                _ => Err(format!("{} is a dateTime; got {}", slot.name, e.ty.name())),
            },
            (_, "instant") => match e.ty {
                Ty::Instant => Ok(()),
                _ => Err(format!(
                    "{} is an instant; convert with instant(...)",
                    slot.name
                )),
            },
            (_, "time") => match e.ty {
                Ty::Time => Ok(()),
                _ => Err(format!("{} is a time; convert with time(...)", slot.name)),
            },
            (_, "boolean") => match e.ty {
                Ty::Bool => Ok(()),
                _ => Err(format!(
                    "{} is a boolean; got {} (use boolean(...) or a comparison)",
                    slot.name,
                    e.ty.name()
                )),
            },
            (_, "decimal" | "integer" | "positiveInt" | "unsignedInt") => match e.ty {
                Ty::Number => Ok(()),
                _ => Err(format!(
                    "{} is {}; convert with decimal(...) or integer(...)",
                    slot.name,
                    a(code)
                )),
            },
            (_, c) if is_primitive(c) => match e.ty {
                Ty::Hl7
                | Ty::Text
                | Ty::Code
                | Ty::Number
                | Ty::Date
                | Ty::DateTime
                | Ty::Instant
                | Ty::Time => Ok(()),
                _ => Err(format!("{} is {}; got {}", slot.name, a(c), e.ty.name())),
            },
            (ty, c) => match ty.complex_name() {
                Some(t)
                    if t == c || slot.node.is_some_and(|n| n.path == t) || same_family(t, c) =>
                {
                    Ok(())
                }
                Some(t) => Err(format!("{} is {}; this makes {}", slot.name, a(c), a(t))),
                None => Err(format!(
                    "{} is {}; got {} (build it with a block or a mapping)",
                    slot.name,
                    a(c),
                    ty.name()
                )),
            },
        };
        if let Err(m) = ok {
            self.err(pos, m);
        }
    }

    fn expr_node(&mut self, n: &YNode, here: &Ty) -> Option<CExpr> {
        let text = match &n.value {
            YValue::Scalar(s) => s.clone(),
            _ => {
                self.err(n.pos, format!("expected an expression, found {}", n.kind()));
                return None;
            }
        };
        match expr::parse(&text) {
            Ok(e) => self.expr(&e, n.pos, here),
            Err(e) => {
                self.err(n.pos.shift(e.offset), e.message);
                None
            }
        }
    }

    fn expr(&mut self, e: &At<Expr>, base: Pos, here: &Ty) -> Option<CExpr> {
        let pos = base.shift(e.offset);
        let origin = self.origin(pos);
        let mk = |node, ty, many| CExpr {
            node,
            ty,
            many,
            origin: origin.clone(),
        };
        Some(match &e.node {
            Expr::Lit(l) => match l {
                Lit::Str(s) => mk(CNode::Lit(Value::String(s.clone())), Ty::Text, false),
                Lit::Num(n) => mk(
                    CNode::Lit(
                        serde_json::from_str::<serde_json::Number>(n)
                            .map(Value::Number)
                            .unwrap_or(Value::Null),
                    ),
                    Ty::Number,
                    false,
                ),
                Lit::Bool(b) => mk(CNode::Lit(Value::Bool(*b)), Ty::Bool, false),
                Lit::Null => mk(CNode::Lit(Value::Null), Ty::Any, false),
            },
            Expr::Path(p, text) => {
                let ty = if p.field.is_none() { Ty::Seg } else { Ty::Hl7 };
                mk(CNode::Path(p.clone(), text.clone()), ty, p.is_multi())
            }
            Expr::Rel(c) => {
                let ty = match (here, c.is_empty()) {
                    (Ty::Seg, true) => Ty::Seg,
                    (Ty::Group, true) => Ty::Group,
                    (Ty::Group, false) => {
                        self.err(pos, "`.1` reads a component of an HL7 value, but `.` is a segment group here");
                        return None;
                    }
                    (Ty::Hl7, false) if c.len() > 2 => {
                        self.err(
                            pos,
                            "a field value has components and subcomponents, no deeper (.1.2)",
                        );
                        return None;
                    }
                    _ => Ty::Hl7,
                };
                mk(CNode::Rel(c.clone()), ty, false)
            }
            Expr::Group(name, idx) => {
                mk(CNode::Group(name.clone(), *idx), Ty::Group, idx.is_none())
            }
            Expr::Name(name) => {
                self.err(
                    pos,
                    format!("{name:?} is not a value here: expected an HL7 path (PID-5), a call such as date(PID-7), or a quoted string"),
                );
                return None;
            }
            Expr::Not(a) => {
                let a = self.expr(a, base, here)?;
                mk(CNode::Not(Box::new(a)), Ty::Bool, false)
            }
            Expr::And(a, b) | Expr::Or(a, b) => {
                let ca = self.expr(a, base, here)?;
                let cb = self.expr(b, base, here)?;
                let node = if matches!(e.node, Expr::And(..)) {
                    CNode::And(Box::new(ca), Box::new(cb))
                } else {
                    CNode::Or(Box::new(ca), Box::new(cb))
                };
                mk(node, Ty::Bool, false)
            }
            Expr::Eq(a, b, neg) => {
                let ca = self.expr(a, base, here)?;
                let cb = self.expr(b, base, here)?;
                mk(CNode::Eq(Box::new(ca), Box::new(cb), *neg), Ty::Bool, false)
            }
            Expr::In(a, list) => {
                let ca = self.expr(a, base, here)?;
                let items: Vec<CExpr> = list
                    .iter()
                    .filter_map(|x| self.expr(x, base, here))
                    .collect();
                mk(CNode::In(Box::new(ca), items), Ty::Bool, false)
            }
            Expr::List(list) => {
                let items: Vec<CExpr> = list
                    .iter()
                    .filter_map(|x| self.expr(x, base, here))
                    .collect();
                let ty = items.first().map(|i| i.ty.clone()).unwrap_or(Ty::Any);
                mk(CNode::List(items), ty, true)
            }
            Expr::Call(name, args) => return self.call(name, args, base, pos, here),
        })
    }

    fn call(
        &mut self,
        name: &str,
        args: &[At<Expr>],
        base: Pos,
        pos: Pos,
        here: &Ty,
    ) -> Option<CExpr> {
        let origin = self.origin(pos);
        if let Some(sig) = functions::lookup(name) {
            if args.len() < sig.min || args.len() > sig.max {
                let want = if sig.min == sig.max {
                    format!("{}", sig.min)
                } else if sig.max == usize::MAX {
                    format!("at least {}", sig.min)
                } else {
                    format!("{} to {}", sig.min, sig.max)
                };
                self.err(
                    pos,
                    format!("{name}() takes {want} argument(s), got {}", args.len()),
                );
                return None;
            }
            let mut cargs = Vec::new();
            for (i, a) in args.iter().enumerate() {
                let apos = base.shift(a.offset);
                let kind = sig.args.get(i).copied().unwrap_or(Arg::Value);
                let kind = if sig.func == Func::Lookup && i == 2 {
                    Arg::Value
                } else {
                    kind
                };
                match kind {
                    Arg::Table => match &a.node {
                        Expr::Name(t) => {
                            let Some(table) = self.vocab.shared(t) else {
                                let hint = suggest(t, self.vocab.names().into_iter());
                                self.err(apos, format!("no vocabulary table or ConceptMap named {t:?} under mappings/vocabulary{hint}"));
                                return None;
                            };
                            cargs.push(CExpr {
                                node: CNode::Table(t.clone(), table),
                                ty: Ty::Any,
                                many: false,
                                origin: self.origin(apos),
                            });
                        }
                        _ => {
                            self.err(apos, format!("{name}(): the first argument is a table name, e.g. {name}(AdministrativeSex, PID-8)"));
                            return None;
                        }
                    },
                    Arg::Alias => match &a.node {
                        Expr::Name(t) => {
                            if !self.aliases.contains(t) {
                                let hint = suggest(t, self.aliases.iter().map(String::as_str));
                                self.err(apos, format!("no resource with alias {t:?} in this mapping (set one with `as:`){hint}"));
                                return None;
                            }
                            cargs.push(CExpr {
                                node: CNode::Alias(t.clone()),
                                ty: Ty::Any,
                                many: false,
                                origin: self.origin(apos),
                            });
                        }
                        _ => {
                            self.err(
                                apos,
                                format!(
                                    "{name}(): expected a resource alias, e.g. {name}(patient)"
                                ),
                            );
                            return None;
                        }
                    },
                    Arg::Value => {
                        if matches!(sig.func, Func::Lookup | Func::Coding) && i == 2 {
                            if let Expr::Lit(Lit::Str(p)) = &a.node {
                                match Unmapped::parse(p) {
                                    Some(u) => {
                                        cargs.push(CExpr {
                                            node: CNode::Policy(u),
                                            ty: Ty::Any,
                                            many: false,
                                            origin: self.origin(apos),
                                        });
                                        continue;
                                    }
                                    None => {
                                        self.err(apos, format!("{name}(): the policy is \"pass\", \"default\" or \"error\", not {p:?}"));
                                        return None;
                                    }
                                }
                            }
                            self.err(apos, format!("{name}(): the third argument is a quoted policy: \"pass\", \"default\" or \"error\""));
                            return None;
                        }
                        // where()'s test reads each value of the first argument as `.`.
                        let here = match (sig.func, cargs.first()) {
                            (Func::Where, Some(first)) if i == 1 => &first.ty.clone(),
                            _ => here,
                        };
                        cargs.push(self.expr(a, base, here)?);
                    }
                }
            }
            let many_in = cargs.iter().any(|a| a.many);
            let ty = match sig.func {
                Func::First | Func::Last | Func::Rest | Func::Coalesce | Func::Where => {
                    cargs.first().map(|a| a.ty.clone()).unwrap_or(Ty::Any)
                }
                Func::If => cargs.get(1).map(|a| a.ty.clone()).unwrap_or(Ty::Any),
                _ => sig.ret.clone(),
            };
            let many = match sig.func {
                Func::Split => true,
                Func::Ref | Func::Id => true,
                _ if sig.single => false,
                _ => many_in,
            };
            return Some(CExpr {
                node: CNode::Func(sig.func, cargs),
                ty,
                many,
                origin,
            });
        }
        if let Some((kind, target)) = self.mappings.get(name) {
            if kind != "segment" && kind != "datatype" {
                self.err(pos, format!("{name} is a {kind} mapping; only segment and datatype mappings can be called"));
                return None;
            }
            if args.len() != 1 {
                self.err(
                    pos,
                    format!(
                        "{name}() takes 1 argument (the {} to map), got {}",
                        if kind == "segment" {
                            "segment"
                        } else {
                            "value"
                        },
                        args.len()
                    ),
                );
                return None;
            }
            let arg = self.expr(&args[0], base, here)?;
            if kind == "segment" && !matches!(arg.ty, Ty::Seg | Ty::Any) {
                self.err(
                    base.shift(args[0].offset),
                    format!(
                        "{name} maps a segment; pass one, e.g. {name}(PID), got {}",
                        arg.ty.name()
                    ),
                );
                return None;
            }
            if kind == "datatype" && matches!(arg.ty, Ty::Seg | Ty::Group) {
                self.err(
                    base.shift(args[0].offset),
                    format!(
                        "{name} maps a field value; pass a field, e.g. {name}(PID-5[*]), got {}",
                        arg.ty.name()
                    ),
                );
                return None;
            }
            self.calls.insert(name.to_string());
            let many = arg.many;
            let ty = match self.schema.def(target.split('.').next().unwrap_or("")) {
                Some(d) if d.name == target => Ty::Json(d.name),
                _ => Ty::Type(target.clone()),
            };
            return Some(CExpr {
                node: CNode::Sub(name.to_string(), Box::new(arg), std::sync::OnceLock::new()),
                ty,
                many,
                origin,
            });
        }
        let candidates: Vec<&str> = functions::FUNCTIONS
            .iter()
            .map(|s| s.name)
            .chain(self.mappings.keys().map(String::as_str))
            .collect();
        let hint = suggest(name, candidates.into_iter());
        self.err(pos, format!("unknown function or mapping {name:?}{hint}"));
        None
    }
}

/// Every expression of a mapping, nested ones included.
pub fn each_expr(m: &Mapping, f: &mut dyn FnMut(&CExpr)) {
    fn expr(e: &CExpr, f: &mut dyn FnMut(&CExpr)) {
        f(e);
        match &e.node {
            CNode::Func(_, args) | CNode::List(args) => args.iter().for_each(|a| expr(a, f)),
            CNode::In(a, list) => {
                expr(a, f);
                list.iter().for_each(|x| expr(x, f));
            }
            CNode::Not(a) | CNode::Sub(_, a, _) => expr(a, f),
            CNode::And(a, b) | CNode::Or(a, b) | CNode::Eq(a, b, _) => {
                expr(a, f);
                expr(b, f);
            }
            _ => {}
        }
    }
    fn rules(rs: &[Rule], f: &mut dyn FnMut(&CExpr)) {
        for r in rs {
            r.each.iter().chain(&r.when).for_each(|e| expr(e, f));
            if let Some(g) = &r.guard {
                expr(&g.key, f);
            }
            match &*r.body {
                Body::Assign(_, RValue::Expr(e)) | Body::Merge(e) => expr(e, f),
                Body::Assign(_, RValue::Object(inner)) | Body::Many(inner) => rules(inner, f),
            }
        }
    }
    fn blocks(bs: &[Block], f: &mut dyn FnMut(&CExpr)) {
        for b in bs {
            b.each.iter().chain(&b.when).for_each(|e| expr(e, f));
            match &b.kind {
                BlockKind::Resource(rb) => {
                    rb.id.iter().chain(&rb.from).for_each(|e| expr(e, f));
                    rules(&rb.set, f);
                }
                BlockKind::Nested(inner) => blocks(inner, f),
            }
        }
    }
    match &m.kind {
        Kind::Router(_) => {}
        Kind::Message(mm) => blocks(&mm.blocks, f),
        Kind::Segment(rm) | Kind::Datatype(rm) => rules(&rm.rules, f),
    }
}

/// Quantity profiles are Quantities.
fn same_family(a: &str, b: &str) -> bool {
    let q = [
        "Quantity",
        "SimpleQuantity",
        "Age",
        "Duration",
        "Count",
        "Distance",
        "MoneyQuantity",
    ];
    q.contains(&a) && q.contains(&b)
}

/// "a date", "an Identifier": the indefinite article for a type name in messages.
fn a(word: &str) -> String {
    let vowel = word
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    if vowel {
        format!("an {word}")
    } else {
        format!("a {word}")
    }
}
