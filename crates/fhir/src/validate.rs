//! Validation of FHIR JSON against the R4 schema, reported as
//! OperationOutcome issues with FHIRPath-style locations.
//!
//! Owns the checks: element names (unknown elements are errors, and are
//! kept in the tree, never dropped), types and JSON shapes, primitive
//! formats (the narrative's XHTML among them), cardinality (arrays where
//! the element repeats, required elements present, `_x` lined up with
//! `x`), required bindings, reference targets, contained resources and
//! local references (ref-1, dom-2..5), Bundle rules (fullUrl, what an
//! entry carries for the Bundle's type, `urn:uuid:` references inside a
//! transaction resolve to an entry, a message starts with a MessageHeader,
//! a document with a Composition), and the error-level invariants of the
//! data types and of the resources a gateway meets most (written as code
//! here, each named by its key: `app-3`, `obs-7`, ...). Profiles, the
//! other FHIRPath invariants and terminology servers are out of scope.

use rustc_hash::FxHashSet as HashSet;
use serde_json::Value;

use crate::primitive;
use crate::schema::{Element, Node, Rules, Schema, TypeRef, TypeSort, is_primitive};
use crate::tree::{Json, Object};

/// Issue severity (OperationOutcome.issue.severity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Processing cannot continue.
    Fatal,
    /// The content is invalid.
    Error,
    /// Worth a look.
    Warning,
    /// For information.
    Information,
}

impl Severity {
    /// As written in OperationOutcome.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Fatal => "fatal",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Information => "information",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Severity.
    pub severity: Severity,
    /// OperationOutcome.issue.code (IssueType: structure, required, value,
    /// code-invalid, invalid, ...).
    pub code: &'static str,
    /// FHIRPath-style location, e.g. `Patient.name[0].family`.
    pub location: String,
    /// What and why. Never contains the value itself beyond short codes.
    pub message: String,
}

impl std::fmt::Display for Issue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.location.is_empty() {
            write!(f, "{}: ", self.location)?;
        }
        write!(f, "{} ({})", self.message, self.severity.as_str())
    }
}

/// True when any issue is an error or fatal.
pub fn has_errors(issues: &[Issue]) -> bool {
    issues.iter().any(|i| i.severity <= Severity::Error)
}

/// Builds an OperationOutcome from issues (one `information` issue saying
/// "ok" when there are none).
pub fn operation_outcome(issues: &[Issue]) -> Value {
    let list: Vec<Value> = if issues.is_empty() {
        vec![
            serde_json::json!({"severity": "information", "code": "informational", "diagnostics": "no issues"}),
        ]
    } else {
        issues
            .iter()
            .map(|i| {
                serde_json::json!({
                    "severity": i.severity.as_str(),
                    "code": i.code,
                    "diagnostics": i.message,
                    "expression": [i.location],
                })
            })
            .collect()
    };
    serde_json::json!({"resourceType": "OperationOutcome", "issue": list})
}

/// Validates a resource given as a `serde_json::Value`.
pub fn validate(resource: &Value) -> Vec<Issue> {
    validate_tree(&Json::from_value(resource))
}

/// Validates a resource. Members whose [`Slot`](crate::schema::Slot) is
/// set are not looked up by name again.
pub fn validate_tree(resource: &Json<'_>) -> Vec<Issue> {
    let mut v = Validator {
        schema: Schema::r4(),
        issues: Vec::new(),
        local_refs: Vec::new(),
    };
    v.resource(resource, None);
    if resource.get("resourceType").and_then(Json::as_str) == Some("Bundle") {
        v.bundle_rules(resource);
    }
    v.issues
}

struct Validator<'s> {
    schema: &'s Schema,
    issues: Vec<Issue>,
    /// Local references (`#id`) seen and not yet checked, with where they
    /// are: the resource that holds them checks them against its
    /// contained resources when it ends (ref-1).
    local_refs: Vec<(String, String)>,
}

/// Where the validator is, as a chain of frames on the stack: rendered to
/// `Patient.name[0].family` only when an issue is reported, so a valid
/// resource costs no location strings.
#[derive(Clone, Copy)]
enum Loc<'a> {
    Root(&'a str),
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl Loc<'_> {
    fn render(&self) -> String {
        match self {
            Loc::Root(s) => s.to_string(),
            Loc::Key(parent, k) => {
                let p = parent.render();
                if p.is_empty() {
                    k.to_string()
                } else {
                    format!("{p}.{k}")
                }
            }
            Loc::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

impl<'s> Validator<'s> {
    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        location: &Loc<'_>,
        message: impl Into<String>,
    ) {
        if self.issues.len() < 200 {
            self.issues.push(Issue {
                severity,
                code,
                location: location.render(),
                message: message.into(),
            });
        }
    }

    /// A resource at `loc` (None for the root: the location starts with its type).
    fn resource(&mut self, v: &Json<'_>, loc: Option<&Loc<'_>>) {
        let empty = Loc::Root("");
        let Json::Object(obj) = v else {
            self.push(
                Severity::Error,
                "structure",
                loc.unwrap_or(&empty),
                "a resource must be a JSON object",
            );
            return;
        };
        let Some(rt) = obj.get("resourceType").and_then(Json::as_str) else {
            self.push(
                Severity::Error,
                "required",
                loc.unwrap_or(&empty),
                "resourceType is missing",
            );
            return;
        };
        let root = Loc::Root(rt);
        let here = loc.unwrap_or(&root);
        match self.schema.root(rt).filter(|_| self.schema.is_resource(rt)) {
            Some(node) => self.object(node, obj, here, true),
            None => self.push(
                Severity::Error,
                "structure",
                here,
                format!("unknown resourceType {rt:?}"),
            ),
        }
    }

    fn object(&mut self, node: Node<'s>, obj: &Object<'_>, loc: &Loc<'_>, is_resource: bool) {
        if !is_resource && obj.is_empty() {
            self.push(
                Severity::Error,
                "structure",
                loc,
                "an element must have content (no empty objects)",
            );
        }
        // The elements present, by index: the required and one-choice checks
        // below ask this list instead of probing the object for every name a
        // choice may take (`value[x]` has fifty).
        let mark = self.local_refs.len();
        let mut present: smallvec::SmallVec<[u16; 16]> = smallvec::SmallVec::new();
        for m in &obj.members {
            let (key, val) = (m.key.as_ref(), &m.value);
            if is_resource && key == "resourceType" {
                continue;
            }
            if let Some(base) = key.strip_prefix('_') {
                if let Some(el) = self.primitive_extension(node, base, val, loc) {
                    present.push(el.index);
                }
                if let (Json::Array(ext), Some(Json::Array(values))) = (val, obj.get(base))
                    && ext.len() != values.len()
                {
                    self.push(
                        Severity::Error,
                        "structure",
                        &Loc::Key(loc, key),
                        format!(
                            "{key} lines up with {base}: {} entries for {} values (pad the shorter with null)",
                            ext.len(),
                            values.len()
                        ),
                    );
                }
                continue;
            }
            let here = Loc::Key(loc, key);
            // A member built by code that knows the schema carries its slot.
            let found = if node.owns(m.slot) {
                self.schema.at_slot(m.slot)
            } else {
                self.schema.child(node, key)
            };
            let Some((el, ty)) = found else {
                let hint = self
                    .schema
                    .children(node)
                    .find(|e| e.name.eq_ignore_ascii_case(key))
                    .map(|e| format!("; did you mean {:?}?", e.name))
                    .unwrap_or_default();
                self.push(
                    Severity::Error,
                    "structure",
                    &here,
                    format!("unknown element {key:?} in {}{hint}", node.path),
                );
                continue;
            };
            present.push(el.index);
            let ty = ty.or_else(|| el.types.first());
            if el.is_array() {
                match val {
                    Json::Array(items) => {
                        if items.is_empty() {
                            self.push(
                                Severity::Error,
                                "structure",
                                &here,
                                "arrays must not be empty; leave the element out",
                            );
                        }
                        let has_ext = || {
                            el.json_names
                                .iter()
                                .position(|n| *n == key)
                                .and_then(|i| el.extension_names.get(i))
                                .is_some_and(|n| obj.contains_key(n))
                        };
                        for (i, item) in items.iter().enumerate() {
                            if item.is_null() && has_ext() {
                                continue;
                            }
                            self.value(node, el, ty, item, &Loc::Index(&here, i));
                        }
                    }
                    _ => self.push(
                        Severity::Error,
                        "structure",
                        &here,
                        format!("{key} repeats: it must be a JSON array"),
                    ),
                }
            } else if let Json::Array(items) = val {
                self.push(
                    Severity::Error,
                    "structure",
                    &here,
                    format!(
                        "{key} holds one value, not an array (here {} of them)",
                        items.len()
                    ),
                );
            } else {
                self.value(node, el, ty, val, &here);
            }
        }
        if is_resource
            && let Some(id @ Json::String(text)) = obj.get("id")
            && primitive::check_prim(primitive::Prim::Id, id).is_err()
        {
            self.push(
                Severity::Error,
                "value",
                &Loc::Key(loc, "id"),
                format!("{text:?} is not a valid id (1-64 of A-Z a-z 0-9 - .)"),
            );
        }
        self.invariants(node, obj, loc);
        if is_resource && !matches!(loc, Loc::Index(Loc::Key(_, "contained"), _)) {
            self.contained_rules(obj, loc, mark);
        }
        // A choice holds one type.
        for el in node.choices() {
            if present.iter().filter(|p| **p == el.index).count() > 1 {
                let present: Vec<&str> = el
                    .json_names
                    .iter()
                    .filter(|n| obj.contains_key(n))
                    .copied()
                    .collect();
                if present.len() > 1 {
                    let name = format!("{}[x]", el.name);
                    self.push(
                        Severity::Error,
                        "structure",
                        &Loc::Key(loc, &name),
                        format!(
                            "{name} holds one value: {} are all present",
                            present.join(", ")
                        ),
                    );
                }
            }
        }
        // Required elements.
        for el in node.required() {
            if !present.contains(&el.index) {
                let name = if el.choice {
                    format!("{}[x]", el.name)
                } else {
                    el.name.to_string()
                };
                let here = Loc::Key(loc, &name);
                self.push(
                    Severity::Error,
                    "required",
                    &here,
                    format!("{name} is required (min {})", el.min),
                );
            }
        }
    }

    /// The datatype invariants a FHIR server enforces and a schema cannot
    /// express: ext-1, cpt-2, qty-3, att-1, per-1.
    fn invariants(&mut self, node: Node<'s>, obj: &Object<'_>, loc: &Loc<'_>) {
        let has = |k: &str| obj.contains_key(k);
        match node.rules() {
            Rules::None => {}
            Rules::Extension => {
                let value = obj.keys().any(|k| k.starts_with("value"));
                let nested = has("extension");
                if value == nested {
                    self.push(
                        Severity::Error,
                        "invariant",
                        loc,
                        "an extension has either nested extensions or a value[x], not both and not neither (ext-1)",
                    );
                }
            }
            Rules::ContactPoint if has("value") && !has("system") => self.push(
                Severity::Error,
                "invariant",
                loc,
                "a ContactPoint with a value needs a system (cpt-2)",
            ),
            Rules::Quantity if has("code") && !has("system") => self.push(
                Severity::Error,
                "invariant",
                loc,
                "a Quantity with a code needs a system (qty-3)",
            ),
            Rules::Attachment if has("data") && !has("contentType") => self.push(
                Severity::Error,
                "invariant",
                loc,
                "an Attachment with data needs a contentType (att-1)",
            ),
            Rules::Period => {
                if let (Some(Json::String(a)), Some(Json::String(b))) =
                    (obj.get("start"), obj.get("end"))
                    && primitive::instant_order(a, b) == Some(std::cmp::Ordering::Greater)
                {
                    self.push(
                        Severity::Error,
                        "invariant",
                        loc,
                        format!("the period ends ({b}) before it starts ({a}) (per-1)"),
                    );
                }
            }
            Rules::ContactPoint | Rules::Quantity | Rules::Attachment => {}
            rules => self.resource_invariants(rules, obj, loc),
        }
    }

    /// The error-level invariants of the resources (and their parts) a
    /// gateway's partners send and its mappings write, as R4 states them.
    fn resource_invariants(&mut self, rules: Rules, obj: &Object<'_>, loc: &Loc<'_>) {
        let has = |k: &str| obj.contains_key(k);
        let text = |k: &str| obj.get(k).and_then(Json::as_str);
        let fail = |me: &mut Self, message: &str| {
            me.push(Severity::Error, "invariant", loc, message.to_string());
        };
        // The code of a CodeableConcept in a given system, if any.
        let coded = |k: &str, system: &str| -> Vec<&str> {
            obj.get(k)
                .and_then(|c| c.get("coding"))
                .and_then(Json::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter(|c| c.get("system").and_then(Json::as_str) == Some(system))
                        .filter_map(|c| c.get("code").and_then(Json::as_str))
                        .collect()
                })
                .unwrap_or_default()
        };
        match rules {
            Rules::Appointment => {
                if has("start") != has("end") {
                    fail(
                        self,
                        "an appointment has both start and end, or neither (app-2)",
                    );
                }
                let status = text("status").unwrap_or("");
                let timed = has("start") && has("end");
                if !timed && !matches!(status, "proposed" | "cancelled" | "waitlist") {
                    fail(
                        self,
                        "only a proposed, cancelled or waitlisted appointment may lack start and end (app-3)",
                    );
                }
                if has("cancelationReason") && !matches!(status, "noshow" | "cancelled") {
                    fail(
                        self,
                        "a cancelation reason belongs to a cancelled or no-show appointment (app-4)",
                    );
                }
            }
            Rules::AppointmentParticipant if !has("type") && !has("actor") => {
                fail(self, "a participant has a type or an actor (app-1)");
            }
            Rules::AllergyIntolerance | Rules::Condition => {
                let (verification, clinical, ait) = if rules == Rules::Condition {
                    (
                        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        false,
                    )
                } else {
                    (
                        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        true,
                    )
                };
                let in_error =
                    coded("verificationStatus", verification).contains(&"entered-in-error");
                if in_error && has("clinicalStatus") {
                    fail(
                        self,
                        if ait {
                            "clinicalStatus is absent when the verification status is entered-in-error (ait-2)"
                        } else {
                            "clinicalStatus is absent when the verification status is entered-in-error (con-5)"
                        },
                    );
                }
                if ait && !in_error && !has("clinicalStatus") {
                    fail(
                        self,
                        "clinicalStatus is present unless the verification status is entered-in-error (ait-1)",
                    );
                }
                if !ait
                    && obj.keys().any(|k| k.starts_with("abatement"))
                    && !coded("clinicalStatus", clinical)
                        .iter()
                        .any(|c| matches!(*c, "inactive" | "resolved" | "remission"))
                {
                    fail(
                        self,
                        "an abated condition's clinicalStatus is inactive, resolved or remission (con-4)",
                    );
                }
            }
            Rules::Observation => {
                let valued = obj.keys().any(|k| k.starts_with("value") && k.len() > 5);
                if valued && has("dataAbsentReason") {
                    fail(self, "dataAbsentReason only when there is no value (obs-6)");
                }
                let codes = |c: Option<&Json<'_>>| -> Vec<(String, String)> {
                    c.and_then(|c| c.get("coding"))
                        .and_then(Json::as_array)
                        .map(|cs| {
                            cs.iter()
                                .map(|c| {
                                    let f = |k: &str| {
                                        c.get(k).and_then(Json::as_str).unwrap_or("").to_string()
                                    };
                                    (f("system"), f("code"))
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                };
                let own = codes(obj.get("code"));
                let repeated = obj
                    .get("component")
                    .and_then(Json::as_array)
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| codes(c.get("code")).iter().any(|x| own.contains(x)))
                    });
                if valued && repeated {
                    fail(
                        self,
                        "the value belongs in the component that has the observation's own code (obs-7)",
                    );
                }
            }
            Rules::ObservationReferenceRange if !has("low") && !has("high") && !has("text") => {
                fail(
                    self,
                    "a reference range has a low, a high or a text (obs-3)",
                );
            }
            Rules::PatientContact
                if !["name", "telecom", "address", "organization"]
                    .iter()
                    .any(|k| has(k)) =>
            {
                fail(
                    self,
                    "a contact has a name, telecom, address or organization (pat-1)",
                );
            }
            Rules::Organization => {
                // `_name` alone (a data-absent-reason) is a name that exists.
                if !has("identifier") && !has("name") && !has("_name") {
                    fail(self, "an organization has a name or an identifier (org-1)");
                }
                let home = |k: &str| {
                    obj.get(k).and_then(Json::as_array).is_some_and(|xs| {
                        xs.iter()
                            .any(|x| x.get("use").and_then(Json::as_str) == Some("home"))
                    })
                };
                if home("telecom") || home("address") {
                    fail(
                        self,
                        "an organization's telecom and address are never of use home (org-2, org-3)",
                    );
                }
            }
            Rules::Range => {
                let v = |k: &str| {
                    obj.get(k)
                        .and_then(|q| q.get("value"))
                        .and_then(Json::as_number)
                        .and_then(|n| n.parse::<f64>().ok())
                };
                if let (Some(low), Some(high)) = (v("low"), v("high"))
                    && low > high
                {
                    fail(self, "a range's low is not above its high (rng-2)");
                }
            }
            Rules::Ratio if has("numerator") != has("denominator") => {
                fail(
                    self,
                    "a ratio has both numerator and denominator, or neither (rat-1)",
                );
            }
            Rules::ServiceRequest if has("orderDetail") && !has("code") => {
                fail(self, "orderDetail only with a code (prr-1)");
            }
            Rules::TimingRepeat => {
                for (a, b, key) in [
                    ("duration", "durationUnit", "tim-1"),
                    ("period", "periodUnit", "tim-2"),
                ] {
                    if has(a) && !has(b) {
                        fail(self, &format!("{a} needs {b} ({key})"));
                    }
                }
                for (a, b, key) in [
                    ("periodMax", "period", "tim-6"),
                    ("durationMax", "duration", "tim-7"),
                    ("countMax", "count", "tim-8"),
                ] {
                    if has(a) && !has(b) {
                        fail(self, &format!("{a} needs {b} ({key})"));
                    }
                }
                if has("timeOfDay") && has("when") {
                    fail(self, "timeOfDay and when do not go together (tim-10)");
                }
            }
            _ => {}
        }
    }

    /// A resource's contained resources and local references: `#id`
    /// references resolve to a contained resource (ref-1); each contained
    /// resource is referred to from the resource, or refers to it (dom-3);
    /// contained resources contain none (dom-2) and carry no version,
    /// last-updated time (dom-4) or security labels (dom-5).
    fn contained_rules(&mut self, obj: &Object<'_>, loc: &Loc<'_>, mark: usize) {
        let contained: &[Json<'_>] = obj.get("contained").and_then(Json::as_array).unwrap_or(&[]);
        let ids: Vec<&str> = contained
            .iter()
            .filter_map(|c| c.get("id").and_then(Json::as_str))
            .collect();
        // ref-1: the `#id` references met in this resource and in its
        // contained ones (`#` alone, from a contained resource, is the
        // resource itself).
        for (at, r) in self.local_refs.split_off(mark.min(self.local_refs.len())) {
            let id = &r[1..];
            if !id.is_empty() && !ids.contains(&id) && self.issues.len() < 200 {
                self.issues.push(Issue {
                    severity: Severity::Error,
                    code: "invalid",
                    location: at,
                    message: format!("reference {r:?} names no contained resource (ref-1)"),
                });
            }
        }
        if contained.is_empty() {
            return;
        }
        let list = Loc::Key(loc, "contained");
        // Every `#...` value (references, canonicals, uris) anywhere, for dom-3.
        let mut pointers: Vec<&str> = Vec::new();
        local_values(obj, false, &mut pointers);
        for c in contained.iter().filter_map(Json::as_object) {
            local_values(c, false, &mut pointers);
        }
        for (i, c) in contained.iter().enumerate() {
            let here = Loc::Index(&list, i);
            let Some(item) = c.as_object() else { continue };
            let mut inner = Vec::new();
            local_values(item, true, &mut inner);
            if item.contains_key("contained") {
                self.push(
                    Severity::Error,
                    "invariant",
                    &here,
                    "a contained resource contains no resources of its own (dom-2)",
                );
            }
            let meta = item.get("meta");
            if ["versionId", "lastUpdated"]
                .iter()
                .any(|k| meta.and_then(|m| m.get(k)).is_some())
            {
                self.push(
                    Severity::Error,
                    "invariant",
                    &here,
                    "a contained resource has no meta.versionId or meta.lastUpdated (dom-4)",
                );
            }
            if meta.and_then(|m| m.get("security")).is_some() {
                self.push(
                    Severity::Error,
                    "invariant",
                    &here,
                    "a contained resource has no security labels of its own (dom-5)",
                );
            }
            let id = item.get("id").and_then(Json::as_str).unwrap_or("");
            let named = !id.is_empty() && pointers.iter().any(|p| p.strip_prefix('#') == Some(id));
            if !named && !inner.contains(&"#") {
                self.push(
                    Severity::Error,
                    "invariant",
                    &here,
                    format!(
                        "contained resource {id:?} is not referred to from the resource, nor refers to it (dom-3)"
                    ),
                );
            }
        }
    }

    /// Checks `_base`; gives the element it extends when there is one.
    fn primitive_extension(
        &mut self,
        node: Node<'s>,
        base: &str,
        val: &Json<'_>,
        loc: &Loc<'_>,
    ) -> Option<&'s Element> {
        let key = format!("_{base}");
        let here = Loc::Key(loc, &key);
        let Some((el, ty)) = self.schema.child(node, base) else {
            self.push(
                Severity::Error,
                "structure",
                &here,
                format!("unknown element {base:?} for _{base}"),
            );
            return None;
        };
        let code = ty
            .or_else(|| el.types.first())
            .map(|t| t.code)
            .unwrap_or("");
        if !is_primitive(code) {
            self.push(
                Severity::Error,
                "structure",
                &here,
                format!("_{base} is only allowed for primitive elements"),
            );
            return Some(el);
        }
        let element = self.schema.root("Element");
        let check = |v: &Json<'_>, l: &Loc<'_>, me: &mut Self| match (v, element) {
            (Json::Object(o), Some(n)) => me.object(n, o, l, false),
            (Json::Null, _) => {}
            _ => me.push(
                Severity::Error,
                "structure",
                l,
                "must be an object with id and/or extension",
            ),
        };
        match (el.is_array(), val) {
            (true, Json::Array(items)) => {
                for (i, it) in items.iter().enumerate() {
                    check(it, &Loc::Index(&here, i), self);
                }
            }
            (false, v @ Json::Object(_)) => check(v, &here, self),
            _ => self.push(
                Severity::Error,
                "structure",
                &here,
                "shape does not match the element's cardinality",
            ),
        }
        Some(el)
    }

    fn value(
        &mut self,
        node: Node<'s>,
        el: &'s Element,
        ty: Option<&'s TypeRef>,
        v: &Json<'_>,
        loc: &Loc<'_>,
    ) {
        if el.content_ref.is_some() || ty.is_some_and(|t| t.sort == TypeSort::Backbone) {
            match (v, self.schema.descend(node, el, ty)) {
                (Json::Object(o), Some(n)) => self.object(n, o, loc, false),
                (Json::Object(_), None) => {}
                _ => self.push(Severity::Error, "structure", loc, "expected a JSON object"),
            }
            return;
        }
        let Some(ty) = ty else { return };
        if ty.sort == TypeSort::Resource {
            self.resource(v, Some(loc));
            return;
        }
        if let Some(prim) = ty.prim {
            if let Err(m) = primitive::check_prim(prim, v) {
                self.push(Severity::Error, "value", loc, m);
                return;
            }
            if let (Some(codes), Some(s)) = (&el.codes, v.as_str())
                && !codes.contains(&s)
            {
                self.push(
                    Severity::Error,
                    "code-invalid",
                    loc,
                    format!(
                        "{s:?} is not in the required value set ({})",
                        codes.join(", ")
                    ),
                );
            }
            return;
        }
        let Json::Object(o) = v else {
            self.push(
                Severity::Error,
                "structure",
                loc,
                format!("expected a {} object", ty.code),
            );
            return;
        };
        if let Some(n) = self.schema.descend(node, el, Some(ty)) {
            self.object(n, o, loc, false);
        }
        if ty.sort == TypeSort::Reference
            && let Some(r) = o.get("reference").and_then(Json::as_str)
            && r.starts_with('#')
        {
            self.local_refs
                .push((Loc::Key(loc, "reference").render(), r.to_string()));
        }
        if ty.sort == TypeSort::Reference
            && let Some(r) = o.get("reference").and_then(Json::as_str)
            && let Some((rtype, _)) = r.split_once('/')
            && !r.contains(':')
            && !ty.targets.is_empty()
            && !ty.targets.contains(&"Resource")
            && !ty.targets.contains(&rtype)
        {
            self.push(
                Severity::Error,
                "invalid",
                &Loc::Key(loc, "reference"),
                format!(
                    "a reference to {rtype} is not allowed here (allowed: {})",
                    ty.targets.join(", ")
                ),
            );
        }
    }

    fn bundle_rules(&mut self, b: &Json<'_>) {
        let btype = b.get("type").and_then(Json::as_str).unwrap_or("");
        let entries: &[Json<'_>] = b.get("entry").and_then(Json::as_array).unwrap_or(&[]);
        // bdl-7: a fullUrl appears once, unless the copies are different
        // versions (`meta.versionId`) or the Bundle is a history.
        let mut seen: HashSet<(&str, Option<&str>)> = HashSet::default();
        let mut full_urls: HashSet<&str> = HashSet::default();
        let bundle = Loc::Root("Bundle");
        let entry = Loc::Key(&bundle, "entry");
        for (i, e) in entries.iter().enumerate() {
            // Locations are frames, rendered only when an issue is reported.
            let at = Loc::Index(&entry, i);
            let full_url = Loc::Key(&at, "fullUrl");
            let request = Loc::Key(&at, "request");
            let resource = e.get("resource");
            if resource.is_none() && e.get("request").is_none() && e.get("response").is_none() {
                self.push(
                    Severity::Error,
                    "invariant",
                    &at,
                    "an entry holds a resource, a request or a response (bdl-5)",
                );
            }
            match e.get("fullUrl").and_then(Json::as_str) {
                Some(u) if u.contains("/_history/") => self.push(
                    Severity::Error,
                    "invariant",
                    &full_url,
                    "fullUrl is not a version-specific reference (bdl-8)",
                ),
                Some(u) => {
                    let version = resource
                        .and_then(|r| r.get("meta"))
                        .and_then(|m| m.get("versionId"))
                        .and_then(Json::as_str);
                    full_urls.insert(u);
                    if btype != "history" && !seen.insert((u, version)) {
                        self.push(
                            Severity::Error,
                            "invalid",
                            &full_url,
                            "fullUrl is used by another entry",
                        );
                    }
                    if let Some(id) = resource.and_then(|r| r.get("id")).and_then(Json::as_str)
                        && !u.starts_with("urn:")
                        && !u.strip_suffix(id).is_some_and(|head| head.ends_with('/'))
                    {
                        self.push(
                            Severity::Error,
                            "invalid",
                            &full_url,
                            "fullUrl must end with the resource's type and id",
                        );
                    }
                }
                None if resource.is_some()
                    && matches!(
                        btype,
                        "transaction" | "batch" | "message" | "document" | "collection"
                    ) =>
                {
                    // R4 does not require it (a POST in a transaction may
                    // go without); without it nothing can refer to the entry.
                    self.push(
                        Severity::Warning,
                        "required",
                        &full_url,
                        "this entry has no fullUrl, so no other entry can refer to it",
                    );
                }
                None => {}
            }
            if matches!(btype, "transaction" | "batch" | "history") {
                match e.get("request") {
                    None => self.push(
                        Severity::Error,
                        "required",
                        &request,
                        format!("entries of a {btype} need a request (bdl-3)"),
                    ),
                    Some(r) => {
                        if r.get("method").is_none() || r.get("url").is_none() {
                            self.push(
                                Severity::Error,
                                "required",
                                &request,
                                "request needs method and url",
                            );
                        }
                    }
                }
            } else if e.get("request").is_some() {
                self.push(
                    Severity::Error,
                    "invariant",
                    &request,
                    format!("entries of a {btype} have no request; only batch, transaction and history do (bdl-3)"),
                );
            }
            let response = Loc::Key(&at, "response");
            match (
                matches!(btype, "batch-response" | "transaction-response" | "history"),
                e.get("response").is_some(),
            ) {
                (true, false) => self.push(
                    Severity::Error,
                    "required",
                    &response,
                    format!("entries of a {btype} need a response (bdl-4)"),
                ),
                (false, true) => self.push(
                    Severity::Error,
                    "invariant",
                    &response,
                    format!("entries of a {btype} have no response; only batch-response, transaction-response and history do (bdl-4)"),
                ),
                _ => {}
            }
            if btype != "searchset" && e.get("search").is_some() {
                self.push(
                    Severity::Error,
                    "invariant",
                    &Loc::Key(&at, "search"),
                    format!("entries of a {btype} have no search; only a searchset's do (bdl-2)"),
                );
            }
        }
        if btype == "transaction" {
            for (i, e) in entries.iter().enumerate() {
                if let Some(r) = e.get("resource") {
                    let mut refs = Vec::new();
                    collect_refs(r, &mut refs);
                    for reference in refs {
                        if reference.starts_with("urn:uuid:") && !full_urls.contains(reference) {
                            let at = Loc::Key(&Loc::Index(&entry, i), "resource");
                            self.push(
                                Severity::Error,
                                "invalid",
                                &at,
                                format!("reference {reference} does not resolve to an entry of this transaction"),
                            );
                        }
                    }
                }
            }
        }
        if b.get("total").is_some() && !matches!(btype, "searchset" | "history") {
            self.push(
                Severity::Error,
                "invariant",
                &Loc::Root("Bundle.total"),
                format!("a {btype} Bundle has no total; only a searchset or history does (bdl-1)"),
            );
        }
        if btype == "document" {
            let id = b.get("identifier");
            if id.and_then(|i| i.get("system")).is_none()
                || id.and_then(|i| i.get("value")).is_none()
            {
                self.push(
                    Severity::Error,
                    "invariant",
                    &Loc::Root("Bundle.identifier"),
                    "a document Bundle has an identifier with a system and a value (bdl-9)",
                );
            }
            if b.get("timestamp").is_none() {
                self.push(
                    Severity::Error,
                    "invariant",
                    &Loc::Root("Bundle.timestamp"),
                    "a document Bundle has a timestamp (bdl-10)",
                );
            }
            if entries
                .first()
                .and_then(|e| e.get("resource"))
                .and_then(|r| r.get("resourceType"))
                .and_then(Json::as_str)
                != Some("Composition")
            {
                self.push(
                    Severity::Error,
                    "invariant",
                    &Loc::Root("Bundle.entry[0]"),
                    "a document Bundle starts with a Composition (bdl-11)",
                );
            }
        }
        if btype == "message"
            && entries
                .first()
                .and_then(|e| e.get("resource"))
                .and_then(|r| r.get("resourceType"))
                .and_then(Json::as_str)
                != Some("MessageHeader")
        {
            self.push(
                Severity::Error,
                "invalid",
                &Loc::Root("Bundle.entry[0]"),
                "a message Bundle starts with a MessageHeader",
            );
        }
    }
}

/// Values in one resource, not in the resources nested in it (a Bundle's
/// entries, a Parameters' resources, contained ones): `reference` values
/// when `refs`, else every string starting with `#` (a local reference,
/// canonical or uri).
fn local_values<'v>(obj: &'v Object<'_>, refs: bool, out: &mut Vec<&'v str>) {
    fn walk<'v>(v: &'v Json<'_>, refs: bool, out: &mut Vec<&'v str>) {
        match v {
            Json::String(s) if !refs && s.starts_with('#') && s.len() > 1 => out.push(s),
            Json::Object(o) if !o.contains_key("resourceType") => {
                for (k, x) in o.iter() {
                    match x {
                        Json::String(s) if refs && k == "reference" => out.push(s),
                        _ => walk(x, refs, out),
                    }
                }
            }
            Json::Array(a) => a.iter().for_each(|x| walk(x, refs, out)),
            _ => {}
        }
    }
    for (k, v) in obj.iter() {
        if k != "contained" {
            walk(v, refs, out);
        }
    }
}

fn collect_refs<'v>(v: &'v Json<'_>, out: &mut Vec<&'v str>) {
    match v {
        Json::Object(o) => {
            for (k, x) in o.iter() {
                if k == "reference"
                    && let Some(s) = x.as_str()
                {
                    out.push(s);
                } else {
                    collect_refs(x, out);
                }
            }
        }
        Json::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errs(v: Value) -> Vec<String> {
        validate(&v)
            .iter()
            .map(|i| format!("{} {}", i.location, i.code))
            .collect()
    }

    #[test]
    fn valid_patient() {
        let p = json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe", "given": ["Jane"]}],
            "gender": "female", "birthDate": "1980-01-01", "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime", "valueDateTime": "1980-01-01T10:00:00+01:00"}]},
            "deceasedBoolean": false, "managingOrganization": {"reference": "Organization/o1"}});
        assert!(validate(&p).is_empty(), "{:?}", validate(&p));
    }

    #[test]
    fn finds_what_is_wrong_and_where() {
        let e = errs(
            json!({"resourceType": "Patient", "birthdate": "1980", "gender": "F", "name": {"family": "Doe"},
            "active": "yes", "deceasedFoo": true, "managingOrganization": {"reference": "Patient/x"}, "link": [{"type": "seealso"}]}),
        );
        for want in [
            "Patient.birthdate structure",
            "Patient.gender code-invalid",
            "Patient.name structure",
            "Patient.active value",
            "Patient.deceasedFoo structure",
            "Patient.managingOrganization.reference invalid",
            "Patient.link[0].other required",
        ] {
            assert!(e.contains(&want.to_string()), "missing {want} in {e:?}");
        }
        assert_eq!(errs(json!({"resourceType": "Nope"})), ["Nope structure"]);
        // Invariants a FHIR server enforces: ext-1, cpt-2, per-1, a choice
        // holds one type, the id pattern; qty-3 and att-1 on an Observation.
        let e = errs(json!({"resourceType": "Patient", "id": "has space",
            "extension": [{"url": "http://x", "valueString": "v", "extension": [{"url": "a", "valueString": "b"}]}],
            "telecom": [{"value": "555"}], "deceasedBoolean": false, "deceasedDateTime": "2020-01-01",
            "name": [{"family": "Doe", "period": {"start": "2024-05-02", "end": "2024-05-01"}}]}));
        for want in [
            "Patient.id value",
            "Patient.extension[0] invariant",
            "Patient.telecom[0] invariant",
            "Patient.deceased[x] structure",
            "Patient.name[0].period invariant",
        ] {
            assert!(e.contains(&want.to_string()), "missing {want} in {e:?}");
        }
        let e = errs(
            json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 1, "code": "mg"},
            "extension": [{"url": "http://x", "valueAttachment": {"data": "AAAA"}}]}),
        );
        assert!(
            e.contains(&"Observation.valueQuantity invariant".to_string()),
            "{e:?}"
        );
        assert!(
            e.contains(&"Observation.extension[0].valueAttachment invariant".to_string()),
            "{e:?}"
        );
        // A period whose zones make it forwards is fine.
        assert!(
            errs(
                json!({"resourceType": "Patient", "name": [{"family": "D", "period":
            {"start": "2024-01-01T10:00:00+02:00", "end": "2024-01-01T09:00:00Z"}}]})
            )
            .is_empty()
        );
        // Required bindings the R4 JSON schema does not enumerate: codes
        // from another element with the same value set, from the
        // definition's own list, or the resource types themselves.
        let e = errs(
            json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
             "resource": {"resourceType": "ServiceRequest", "status": "ordered", "intent": "order",
                          "priority": "now", "subject": {"display": "x"}},
             "request": {"method": "PUTX", "url": "ServiceRequest"}},
            {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239521",
             "resource": {"resourceType": "RiskAssessment", "status": "done", "subject": {"display": "x"}},
             "request": {"method": "POST", "url": "RiskAssessment"}},
            {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239522",
             "resource": {"resourceType": "CapabilityStatement", "status": "active", "date": "2024",
                          "kind": "instance", "fhirVersion": "4.0.1", "format": ["json"],
                          "rest": [{"mode": "server", "resource": [{"type": "Patient"}, {"type": "Patinet"}]}]},
             "request": {"method": "POST", "url": "CapabilityStatement"}}]}),
        );
        for want in [
            "Bundle.entry[0].resource.status code-invalid",
            "Bundle.entry[0].resource.priority code-invalid",
            "Bundle.entry[0].request.method code-invalid",
            "Bundle.entry[1].resource.status code-invalid",
            "Bundle.entry[2].resource.rest[0].resource[1].type code-invalid",
        ] {
            assert!(e.contains(&want.to_string()), "missing {want} in {e:?}");
        }
        assert_eq!(e.len(), 5, "{e:?}");
        // Contained resources and local references (ref-1, dom-2..5); a
        // Bundle's entries are resources of their own.
        let e = errs(json!({"resourceType": "Patient",
            "contained": [
                {"resourceType": "Organization", "id": "o", "name": "A", "meta": {"versionId": "2"}},
                {"resourceType": "Organization", "id": "lonely", "name": "B", "contained": [{"resourceType": "Basic", "id": "b", "code": {"text": "x"}}]},
                {"resourceType": "Provenance", "id": "p", "recorded": "2024-01-01T00:00:00Z",
                 "agent": [{"who": {"reference": "#gone"}}], "target": [{"reference": "#"}]}],
            "managingOrganization": {"reference": "#o"}, "generalPractitioner": [{"reference": "#nothere"}]}));
        for want in [
            "Patient.generalPractitioner[0].reference invalid",
            "Patient.contained[0] invariant",
            "Patient.contained[1] invariant",
            "Patient.contained[2].agent[0].who.reference invalid",
        ] {
            assert!(e.contains(&want.to_string()), "missing {want} in {e:?}");
        }
        assert_eq!(
            e.len(),
            5,
            "dom-4, dom-2, dom-3 (lonely), ref-1 twice: {e:?}"
        );
        assert!(
            errs(
                json!({"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [
                {"fullUrl": "http://x/Patient/1", "search": {"mode": "match"},
                 "resource": {"resourceType": "Patient", "id": "1",
                    "contained": [{"resourceType": "Organization", "id": "o", "name": "A"}],
                    "managingOrganization": {"reference": "#o"}}}]})
            )
            .is_empty()
        );
        // What a Bundle's entries carry follows its type (bdl-1..4, 9..11).
        let e = errs(
            json!({"resourceType": "Bundle", "type": "document", "total": 2, "entry": [
            {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", "resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}, "response": {"status": "201"}, "search": {"mode": "match"}}]}),
        );
        for want in [
            "Bundle.total invariant",
            "Bundle.identifier invariant",
            "Bundle.timestamp invariant",
            "Bundle.entry[0] invariant",
            "Bundle.entry[0].request invariant",
            "Bundle.entry[0].response invariant",
            "Bundle.entry[0].search invariant",
        ] {
            assert!(e.contains(&want.to_string()), "missing {want} in {e:?}");
        }
        let e =
            errs(json!({"resourceType": "Bundle", "type": "transaction-response", "entry": [{}]}));
        assert!(
            e.contains(&"Bundle.entry[0].response required".to_string()),
            "{e:?}"
        );
        // Resource invariants R4 gives error severity.
        let inv = |v: serde_json::Value| -> Vec<String> {
            validate(&v)
                .into_iter()
                .filter(|i| i.severity == Severity::Error)
                .map(|i| i.message)
                .collect()
        };
        let keys = |v: serde_json::Value| -> Vec<String> {
            inv(v)
                .iter()
                .filter_map(|m| {
                    m.rsplit_once('(')
                        .map(|(_, k)| k.trim_end_matches(')').to_string())
                })
                .collect()
        };
        assert_eq!(
            keys(
                json!({"resourceType": "Appointment", "status": "booked", "start": "2024-01-01T10:00:00Z",
                "cancelationReason": {"text": "x"}, "participant": [{"status": "accepted"}]})
            ),
            ["app-1", "app-2", "app-3", "app-4"]
        );
        assert!(inv(json!({"resourceType": "Appointment", "status": "proposed", "participant": [{"actor": {"display": "x"}, "status": "accepted"}]})).is_empty());
        let vs = |sys: &str, code: &str| json!({"coding": [{"system": sys, "code": code}]});
        assert_eq!(
            keys(
                json!({"resourceType": "AllergyIntolerance", "patient": {"display": "x"},
                "verificationStatus": vs("http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "confirmed")})
            ),
            ["ait-1"]
        );
        assert_eq!(
            keys(
                json!({"resourceType": "Condition", "subject": {"display": "x"}, "abatementString": "gone",
                "clinicalStatus": vs("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
                "verificationStatus": vs("http://terminology.hl7.org/CodeSystem/condition-ver-status", "entered-in-error")})
            ),
            ["con-5", "con-4"]
        );
        let code = json!({"coding": [{"system": "http://loinc.org", "code": "8867-4"}]});
        assert_eq!(
            keys(
                json!({"resourceType": "Observation", "status": "final", "code": code, "valueString": "x",
                "dataAbsentReason": {"text": "x"}, "referenceRange": [{"appliesTo": [{"text": "x"}]}],
                "component": [{"code": code, "valueString": "y"}]})
            ),
            ["obs-3", "obs-6", "obs-7"]
        );
        assert_eq!(
            keys(json!({"resourceType": "Patient", "contact": [{"gender": "male"}]})),
            ["pat-1"]
        );
        assert_eq!(
            keys(
                json!({"resourceType": "Organization", "telecom": [{"system": "phone", "value": "1", "use": "home"}]})
            ),
            ["org-1", "org-2, org-3"]
        );
        assert_eq!(
            keys(
                json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "valueRange": {"low": {"value": 5}, "high": {"value": 1.5}},
                "component": [{"code": {"text": "r"}, "valueRatio": {"numerator": {"value": 1}}}]})
            ),
            ["rng-2", "rat-1"]
        );
        assert_eq!(
            keys(
                json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {"display": "x"},
                "medicationCodeableConcept": {"text": "x"},
                "dosageInstruction": [{"timing": {"repeat": {"period": 1, "durationMax": 2, "when": ["MORN"], "timeOfDay": ["08:00:00"]}}}]})
            ),
            ["tim-2", "tim-7", "tim-10"]
        );
        assert_eq!(
            keys(
                json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "http://x/Patient/1/_history/2", "resource": {"resourceType": "Patient"}}, {"fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"}]})
            ),
            ["bdl-8", "bdl-5"]
        );
        let hint = validate(&json!({"resourceType": "Patient", "birthdate": "1980"}));
        assert!(hint[0].message.contains("did you mean \"birthDate\""));
    }

    #[test]
    fn bundle_rules() {
        let b = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:11111111-1111-1111-1111-111111111111", "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:22222222-2222-2222-2222-222222222222", "resource": {"resourceType": "Encounter", "status": "finished", "class": {"code": "IMP"},
              "subject": {"reference": "urn:uuid:33333333-3333-3333-3333-333333333333"}}, "request": {"method": "POST", "url": "Encounter"}},
            {"resource": {"resourceType": "Patient"}}
        ]});
        let e = errs(b);
        assert!(
            e.contains(&"Bundle.entry[1].resource invalid".to_string()),
            "{e:?}"
        );
        // R4 does not require a fullUrl: a warning, not a refusal.
        assert!(
            e.contains(&"Bundle.entry[2].fullUrl required".to_string()),
            "{e:?}"
        );
        let no_full_url = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}]});
        let issues = validate(&no_full_url);
        assert!(!has_errors(&issues) && issues.len() == 1, "{issues:?}");
        // bdl-7: the same fullUrl twice is an error, unless the versions differ.
        let twice = |v1: &str, v2: &str| {
            json!({"resourceType": "Bundle", "type": "collection", "entry": [
                {"fullUrl": "http://x.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": v1}}},
                {"fullUrl": "http://x.org/fhir/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "meta": {"versionId": v2}}}]})
        };
        assert!(has_errors(&validate(&twice("1", "1"))));
        assert!(
            !has_errors(&validate(&twice("1", "2"))),
            "{:?}",
            validate(&twice("1", "2"))
        );
        assert!(
            e.contains(&"Bundle.entry[2].request required".to_string()),
            "{e:?}"
        );
        let oo = operation_outcome(&validate(&json!({"resourceType": "Patient", "gender": 1})));
        assert_eq!(oo["issue"][0]["expression"][0], "Patient.gender");
    }
}
