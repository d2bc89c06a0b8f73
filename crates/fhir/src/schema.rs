//! The R4 schema: the generated table (`r4/schema.txt`), read once into
//! definitions, elements and a navigation API.
//!
//! Owns knowing what exists: which elements a resource, data type or
//! backbone element has, their cardinality and types, choice types
//! (`value[x]` ⇄ `valueQuantity`), content references
//! (`Questionnaire.item.item` is a `Questionnaire.item`) and the codes of
//! required bindings. Validation, JSON ordering, XML and the mapping
//! compiler all navigate with it.

use rustc_hash::FxHashMap;
use std::sync::OnceLock;

static TABLE: &str = include_str!("r4/schema.txt");

/// What a definition is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A resource (Patient, Bundle...).
    Resource,
    /// A complex data type (HumanName, Quantity...).
    ComplexType,
    /// A primitive type (string, date...).
    PrimitiveType,
    /// A logical model.
    Logical,
}

/// One allowed type of an element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeRef {
    /// The type code (`HumanName`, `string`, `Reference`, `BackboneElement`).
    pub code: &'static str,
    /// For references and canonicals: the allowed target resource types.
    pub targets: Vec<&'static str>,
    /// The definition of a complex type (its index), resolved once.
    def: Option<u16>,
    /// The primitive type it is, if it is one.
    pub prim: Option<crate::primitive::Prim>,
    /// What sort of type it is, worked out once from its code.
    pub sort: TypeSort,
}

/// What sort of type a [`TypeRef`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeSort {
    /// A primitive (see [`TypeRef::prim`]).
    Primitive,
    /// `BackboneElement` or `Element`: the element's own children.
    Backbone,
    /// `Resource`: any resource, by its `resourceType`.
    Resource,
    /// `Reference`.
    Reference,
    /// Another complex type.
    Complex,
}

impl TypeSort {
    fn of(code: &str) -> TypeSort {
        match code {
            "BackboneElement" | "Element" => TypeSort::Backbone,
            "Resource" => TypeSort::Resource,
            "Reference" => TypeSort::Reference,
            c if crate::primitive::Prim::of(c).is_some() => TypeSort::Primitive,
            _ => TypeSort::Complex,
        }
    }
}

/// One element definition.
#[derive(Clone, Debug)]
pub struct Element {
    /// Full path (`Patient.contact.name`, `Observation.value[x]`).
    pub path: &'static str,
    /// The last path segment without `[x]` (`name`, `value`).
    pub name: &'static str,
    /// A choice element (`value[x]`).
    pub choice: bool,
    /// Minimum cardinality.
    pub min: u32,
    /// Maximum cardinality; `None` is `*`.
    pub max: Option<u32>,
    /// Allowed types (empty with a content reference).
    pub types: Vec<TypeRef>,
    /// `Questionnaire.item` for `Questionnaire.item.item`.
    pub content_ref: Option<&'static str>,
    /// The codes of a required binding, when the schema lists them.
    pub codes: Option<Vec<&'static str>>,
    /// JSON property names, one per type for a choice (`valueQuantity`),
    /// else the name; computed once so lookups allocate nothing.
    pub json_names: Vec<&'static str>,
    /// The same with a leading `_` (primitive extensions).
    pub extension_names: Vec<&'static str>,
    /// Its index in its definition's `elements`.
    pub index: u16,
    /// The backbone element it is a child of (its index), or none for a
    /// child of the definition's root.
    parent: u16,
    /// The element a content reference points at (its index), resolved once.
    content_ix: Option<u16>,
    /// It has child elements of its own (a backbone element).
    backbone: bool,
}

impl Element {
    /// True when the element may repeat.
    pub fn is_array(&self) -> bool {
        self.max != Some(1) && self.max != Some(0)
    }

    /// The JSON property name for one of its types (`valueQuantity`).
    pub fn json_name(&self, ty: &TypeRef) -> String {
        if self.choice {
            format!("{}{}", self.name, capitalize(ty.code))
        } else {
            self.name.to_string()
        }
    }
}

/// No parent element: a definition's root.
const ROOT: u16 = u16::MAX;
/// No type picked (a content reference, or a choice named without its type).
const NO_TYPE: u8 = 63;

/// Where a JSON property sits: its element, the type it picks and whether
/// it is the `_x` companion of a primitive, packed into one number whose
/// order within one object is the definitions' element order (`x` first,
/// `_x` right after it). [`Slot::RESOURCE_TYPE`] sorts first and
/// [`Slot::UNKNOWN`] (an element the schema does not know) last.
///
/// Trees built by code that already knows the element (the mapping
/// compiler) carry the slot, so neither ordering nor validation looks the
/// name up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot(u32);

impl Slot {
    /// `resourceType`: first in every resource.
    pub const RESOURCE_TYPE: Slot = Slot(0);
    /// Not looked up, or not known to the schema: last, in the order given.
    pub const UNKNOWN: Slot = Slot(u32::MAX);
    const KNOWN: u32 = 1 << 30;

    fn new(def: u16, elem: u16, ty: u8, ext: bool) -> Slot {
        Slot(
            Slot::KNOWN
                | (u32::from(def) << 17)
                | (u32::from(elem) << 7)
                | (u32::from(ty.min(NO_TYPE)) << 1)
                | u32::from(ext),
        )
    }

    /// A slot of an element of the schema (not `resourceType`, not unknown).
    pub fn is_element(self) -> bool {
        self != Slot::UNKNOWN && self.0 & Slot::KNOWN != 0
    }

    /// The `_x` companion of a primitive.
    pub fn is_extension(self) -> bool {
        self.is_element() && self.0 & 1 == 1
    }

    /// The same element and type without (or with) the `_` companion flag.
    pub fn with_extension(self, ext: bool) -> Slot {
        if self.is_element() {
            Slot((self.0 & !1) | u32::from(ext))
        } else {
            self
        }
    }

    /// Two types of one choice element (`valueString`, `valueDateTime`):
    /// the same element, another type.
    pub fn other_choice(self, other: Slot) -> bool {
        self.is_element()
            && other.is_element()
            && self.0 >> 7 == other.0 >> 7
            && (self.0 >> 1) & 0x3f != (other.0 >> 1) & 0x3f
    }

    fn parts(self) -> (usize, usize, Option<usize>) {
        let def = ((self.0 & !Slot::KNOWN) >> 17) as usize;
        let elem = ((self.0 >> 7) & 0x3ff) as usize;
        let ty = ((self.0 >> 1) & 0x3f) as u8;
        (def, elem, (ty != NO_TYPE).then_some(usize::from(ty)))
    }
}

/// What a node's objects are checked against beyond their elements: the
/// invariants the validator implements, picked once per node instead of by
/// comparing path strings for every object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rules {
    /// Nothing beyond the elements.
    None,
    /// ext-1.
    Extension,
    /// cpt-2.
    ContactPoint,
    /// qty-3 (Quantity and its profiles).
    Quantity,
    /// att-1.
    Attachment,
    /// per-1.
    Period,
    /// app-2, app-3, app-4.
    Appointment,
    /// app-1.
    AppointmentParticipant,
    /// ait-1, ait-2.
    AllergyIntolerance,
    /// con-4, con-5.
    Condition,
    /// obs-6, obs-7.
    Observation,
    /// obs-3.
    ObservationReferenceRange,
    /// pat-1.
    PatientContact,
    /// org-1, org-2, org-3.
    Organization,
    /// rng-2.
    Range,
    /// rat-1.
    Ratio,
    /// prr-1.
    ServiceRequest,
    /// tim-1, 2, 6, 7, 8, 10.
    TimingRepeat,
}

impl Rules {
    fn of(path: &str) -> Rules {
        match path {
            "Extension" => Rules::Extension,
            "ContactPoint" => Rules::ContactPoint,
            "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity"
            | "MoneyQuantity" => Rules::Quantity,
            "Attachment" => Rules::Attachment,
            "Period" => Rules::Period,
            "Appointment" => Rules::Appointment,
            "Appointment.participant" => Rules::AppointmentParticipant,
            "AllergyIntolerance" => Rules::AllergyIntolerance,
            "Condition" => Rules::Condition,
            "Observation" => Rules::Observation,
            "Observation.referenceRange" => Rules::ObservationReferenceRange,
            "Patient.contact" => Rules::PatientContact,
            "Organization" => Rules::Organization,
            "Range" => Rules::Range,
            "Ratio" => Rules::Ratio,
            "ServiceRequest" => Rules::ServiceRequest,
            "Timing.repeat" => Rules::TimingRepeat,
            _ => Rules::None,
        }
    }
}

/// The children of one node (a definition's root or a backbone element).
#[derive(Debug, Default)]
struct Kids {
    /// Element indexes, in definition order.
    all: Vec<u16>,
    /// Those with min ≥ 1.
    required: Vec<u16>,
    /// Choice elements.
    choices: Vec<u16>,
}

/// One definition (resource or type).
#[derive(Debug)]
pub struct Def {
    /// Its name.
    pub name: &'static str,
    /// What it is.
    pub kind: Kind,
    /// Base definition name.
    pub base: Option<&'static str>,
    /// Elements in definition order.
    pub elements: Vec<Element>,
    /// Its index in the schema.
    pub index: u16,
    /// Children of the root (`[0]`) and of each element (`[1 + index]`).
    kids: Vec<Kids>,
    /// Invariants of the root (`[0]`) and of each element's objects.
    rules: Vec<Rules>,
    /// (parent element or ROOT, JSON property name) → (element, type).
    names: FxHashMap<(u16, &'static str), (u16, u8)>,
}

impl Def {
    fn kid_ix(parent: u16) -> usize {
        if parent == ROOT {
            0
        } else {
            usize::from(parent) + 1
        }
    }

    /// Builds the child lists and the JSON-name index once every element is read.
    fn indexed(mut self, parents: Vec<u16>) -> Def {
        let n = self.elements.len();
        let mut kids: Vec<Kids> = (0..=n).map(|_| Kids::default()).collect();
        let mut names = FxHashMap::default();
        for (i, (el, parent)) in self.elements.iter().zip(&parents).enumerate() {
            let ix = i as u16;
            let k = &mut kids[Def::kid_ix(*parent)];
            k.all.push(ix);
            if el.min > 0 {
                k.required.push(ix);
            }
            if el.choice {
                k.choices.push(ix);
                for (t, name) in el.json_names.iter().enumerate() {
                    names
                        .entry((*parent, *name))
                        .or_insert((ix, (t as u8).min(NO_TYPE)));
                }
            } else {
                let t = if el.types.len() == 1 { 0 } else { NO_TYPE };
                names.entry((*parent, el.name)).or_insert((ix, t));
            }
        }
        for (i, el) in self.elements.iter_mut().enumerate() {
            el.backbone = !kids[i + 1].all.is_empty();
        }
        let mut rules = vec![Rules::of(self.name)];
        rules.extend(self.elements.iter().map(|e| Rules::of(e.path)));
        self.kids = kids;
        self.rules = rules;
        self.names = names;
        self
    }
}

/// A place in the schema: a definition and a path within it (the
/// definition's own name for its root, a backbone element's path below).
#[derive(Clone, Copy, Debug)]
pub struct Node<'s> {
    /// The definition.
    pub def: &'s Def,
    /// The path within it.
    pub path: &'static str,
    /// The backbone element whose children this node has (ROOT for the root).
    parent: u16,
}

impl<'s> Node<'s> {
    /// A definition's root.
    pub fn root(def: &'s Def) -> Node<'s> {
        Node {
            def,
            path: def.name,
            parent: ROOT,
        }
    }

    /// The invariants this node's objects are checked against.
    pub fn rules(&self) -> Rules {
        self.def.rules[Def::kid_ix(self.parent)]
    }

    fn kids(&self) -> &'s Kids {
        &self.def.kids[Def::kid_ix(self.parent)]
    }

    /// The elements with min ≥ 1.
    pub fn required(&self) -> impl Iterator<Item = &'s Element> + 's {
        let def = self.def;
        self.kids()
            .required
            .iter()
            .map(move |i| &def.elements[usize::from(*i)])
    }

    /// The choice elements.
    pub fn choices(&self) -> impl Iterator<Item = &'s Element> + 's {
        let def = self.def;
        self.kids()
            .choices
            .iter()
            .map(move |i| &def.elements[usize::from(*i)])
    }

    /// True when `slot` is an element of this node (the slot of a member
    /// that was looked up here, or set by code that knows the schema).
    pub fn owns(&self, slot: Slot) -> bool {
        if !slot.is_element() {
            return false;
        }
        let (def, elem, _) = slot.parts();
        def == usize::from(self.def.index)
            && self
                .def
                .elements
                .get(elem)
                .is_some_and(|e| e.parent == self.parent)
    }
}

/// The schema.
#[derive(Debug)]
pub struct Schema {
    defs: Vec<Def>,
    by_name: FxHashMap<&'static str, u16>,
}

/// Upper-cases the first character (`quantity` → `Quantity`).
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// FHIR's primitive types and how they appear in JSON.
pub fn is_primitive(code: &str) -> bool {
    matches!(
        code,
        "boolean"
            | "integer"
            | "string"
            | "decimal"
            | "uri"
            | "url"
            | "canonical"
            | "base64Binary"
            | "instant"
            | "date"
            | "dateTime"
            | "time"
            | "code"
            | "oid"
            | "id"
            | "markdown"
            | "unsignedInt"
            | "positiveInt"
            | "uuid"
            | "xhtml"
    )
}

fn parse_max(s: &str) -> Option<u32> {
    if s == "*" { None } else { s.parse().ok() }
}

fn parse_types(s: &'static str) -> Vec<TypeRef> {
    if s == "-" {
        return Vec::new();
    }
    s.split('|')
        .map(|t| match t.split_once('(') {
            Some((code, rest)) => TypeRef {
                code,
                targets: rest
                    .trim_end_matches(')')
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .collect(),
                def: None,
                prim: crate::primitive::Prim::of(code),
                sort: TypeSort::of(code),
            },
            None => TypeRef {
                code: t,
                targets: Vec::new(),
                def: None,
                prim: crate::primitive::Prim::of(t),
                sort: TypeSort::of(t),
            },
        })
        .collect()
}

impl Schema {
    /// The R4 schema, read on first use.
    pub fn r4() -> &'static Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| Schema::parse(TABLE))
    }

    fn parse(table: &'static str) -> Schema {
        let mut defs: Vec<Def> = Vec::new();
        // A definition being read: its elements' parents, and its paths so far.
        type Reading = (Def, Vec<u16>, FxHashMap<&'static str, u16>);
        let mut current: Option<Reading> = None;
        let finish = |defs: &mut Vec<Def>, cur: Option<Reading>| {
            if let Some((mut d, parents, _)) = cur {
                d.index = defs.len() as u16;
                defs.push(d.indexed(parents));
            }
        };
        for line in table.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let mut f = line.split(' ');
            let first = f.next().unwrap_or_default();
            if let Some(name) = first.strip_prefix('@') {
                finish(&mut defs, current.take());
                let kind = match f.next() {
                    Some("resource") => Kind::Resource,
                    Some("complex-type") => Kind::ComplexType,
                    Some("primitive-type") => Kind::PrimitiveType,
                    _ => Kind::Logical,
                };
                let base = f.next().filter(|b| *b != "-");
                current = Some((
                    Def {
                        name,
                        kind,
                        base,
                        elements: Vec::new(),
                        index: 0,
                        kids: Vec::new(),
                        rules: Vec::new(),
                        names: FxHashMap::default(),
                    },
                    Vec::new(),
                    FxHashMap::default(),
                ));
                continue;
            }
            let Some((def, parents, paths)) = current.as_mut() else {
                continue;
            };
            let (min, max, types, codes) = (f.next(), f.next(), f.next(), f.next());
            let path = first;
            let (parent, last) = path.rsplit_once('.').unwrap_or(("", path));
            let choice = last.ends_with("[x]");
            let types_s = types.unwrap_or("-");
            let (types, content_ref) = match types_s.strip_prefix('@') {
                Some(r) => (Vec::new(), Some(r)),
                None => (parse_types(types_s), None),
            };
            let name = last.trim_end_matches("[x]");
            // The schema lives for the whole process: its derived names do too.
            let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
            let json_names: Vec<&'static str> = if choice {
                types
                    .iter()
                    .map(|t| leak(format!("{name}{}", capitalize(t.code))))
                    .collect()
            } else {
                vec![name]
            };
            let extension_names = json_names.iter().map(|n| leak(format!("_{n}"))).collect();
            // Elements come in path order: a parent is read before its children.
            let parent_ix = paths.get(parent).copied().unwrap_or(ROOT);
            paths.insert(path, def.elements.len() as u16);
            let el = Element {
                path,
                name,
                choice,
                min: min.and_then(|m| m.parse().ok()).unwrap_or(0),
                max: max.and_then(parse_max),
                types,
                content_ref,
                codes: codes.filter(|c| *c != "-").map(|c| c.split('|').collect()),
                json_names,
                extension_names,
                index: def.elements.len() as u16,
                parent: parent_ix,
                content_ix: None,
                backbone: false,
            };
            def.elements.push(el);
            parents.push(parent_ix);
        }
        finish(&mut defs, current.take());
        let by_name: FxHashMap<&'static str, u16> =
            defs.iter().map(|d| (d.name, d.index)).collect();
        // Resolve content references and complex types once.
        for d in &mut defs {
            let paths: Vec<&'static str> = d.elements.iter().map(|e| e.path).collect();
            for el in &mut d.elements {
                if let Some(r) = el.content_ref {
                    el.content_ix = paths.iter().position(|p| *p == r).map(|i| i as u16);
                }
                for t in &mut el.types {
                    if !is_primitive(t.code) && t.code != "Resource" {
                        t.def = by_name.get(t.code).copied();
                    }
                }
            }
        }
        Schema { defs, by_name }
    }

    /// Every definition.
    pub fn defs(&self) -> impl Iterator<Item = &Def> {
        self.defs.iter()
    }

    /// A definition by name.
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.by_name.get(name).map(|i| &self.defs[usize::from(*i)])
    }

    /// True for resource types.
    pub fn is_resource(&self, name: &str) -> bool {
        self.def(name).is_some_and(|d| d.kind == Kind::Resource)
    }

    /// The root node of a resource or type.
    pub fn root(&self, name: &str) -> Option<Node<'_>> {
        self.def(name).map(Node::root)
    }

    /// The node of an element path within a definition (`Bundle.entry`), or
    /// its root when the path is the definition's name.
    pub fn node_at<'s>(&'s self, def: &'s Def, path: &str) -> Option<Node<'s>> {
        if path == def.name {
            return Some(Node::root(def));
        }
        let el = def.elements.iter().find(|e| e.path == path)?;
        Some(Node {
            def,
            path: el.path,
            parent: el.index,
        })
    }

    /// The child elements of a node, in definition order.
    pub fn children<'s>(&'s self, node: Node<'s>) -> impl Iterator<Item = &'s Element> + 's {
        let def = node.def;
        node.kids()
            .all
            .iter()
            .map(move |i| &def.elements[usize::from(*i)])
    }

    /// The element a JSON property name stands for, and the type it picks:
    /// `valueQuantity` under Observation is `value[x]` as Quantity. A
    /// leading `_` (primitive extensions) is not stripped here.
    pub fn child<'s>(
        &'s self,
        node: Node<'s>,
        json_name: &str,
    ) -> Option<(&'s Element, Option<&'s TypeRef>)> {
        self.slot(node, json_name).map(|(_, el, ty)| (el, ty))
    }

    /// Like [`Schema::child`], with the element's place in definition order
    /// (for a choice, types of one element are ordered after each other:
    /// the place is `element × 64 + type`).
    pub fn child_at<'s>(
        &'s self,
        node: Node<'s>,
        json_name: &str,
    ) -> Option<(usize, &'s Element, Option<&'s TypeRef>)> {
        let (slot, el, ty) = self.slot(node, json_name)?;
        let (_, e, t) = slot.parts();
        Some((e * 64 + t.unwrap_or(0).min(63), el, ty))
    }

    /// Like [`Schema::child`], with the member's [`Slot`] (the `_x`
    /// companion flag is not set: a leading `_` is not stripped here).
    pub fn slot<'s>(
        &'s self,
        node: Node<'s>,
        json_name: &str,
    ) -> Option<(Slot, &'s Element, Option<&'s TypeRef>)> {
        // `HashMap` is covariant in its key: look up with a shorter-lived name.
        let names: &FxHashMap<(u16, &str), (u16, u8)> = &node.def.names;
        let (e, t) = *names.get(&(node.parent, json_name))?;
        let el = node.def.elements.get(usize::from(e))?;
        let ty = if t == NO_TYPE {
            None
        } else {
            el.types.get(usize::from(t))
        };
        Some((Slot::new(node.def.index, e, t, false), el, ty))
    }

    /// The element and type a [`Slot`] stands for; `None` for
    /// `resourceType` and unknown slots.
    pub fn at_slot(&self, slot: Slot) -> Option<(&Element, Option<&TypeRef>)> {
        if !slot.is_element() {
            return None;
        }
        let (d, e, t) = slot.parts();
        let el = self.defs.get(d)?.elements.get(e)?;
        Some((el, t.and_then(|t| el.types.get(t))))
    }

    /// The node to descend into for an element of a given type: backbone
    /// elements stay in their definition, content references jump to the
    /// referenced path, complex types go to their own definition. `None`
    /// for primitives and for `Resource` (decided by `resourceType`).
    pub fn descend<'s>(
        &'s self,
        node: Node<'s>,
        el: &'s Element,
        ty: Option<&TypeRef>,
    ) -> Option<Node<'s>> {
        if el.content_ref.is_some() {
            let target = node.def.elements.get(usize::from(el.content_ix?))?;
            return Some(Node {
                def: node.def,
                path: target.path,
                parent: target.index,
            });
        }
        let ty = ty.or_else(|| el.types.first())?;
        match ty.code {
            "BackboneElement" | "Element" if el.backbone => Some(Node {
                def: node.def,
                path: el.path,
                parent: el.index,
            }),
            _ if ty.prim.is_some() => None,
            "Resource" => None,
            _ => ty.def.map(|d| Node::root(&self.defs[usize::from(d)])),
        }
    }

    /// The type name a node stands for (`HumanName`, `Patient`, or the
    /// backbone path `Patient.contact`).
    pub fn node_name<'s>(&self, node: Node<'s>) -> &'static str {
        node.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_212_definitions_are_there() {
        let s = Schema::r4();
        assert_eq!(s.defs().count(), 212);
        let count = |k| s.defs().filter(|d| d.kind == k).count();
        assert_eq!(count(Kind::Resource), 148);
        assert_eq!(count(Kind::ComplexType), 43);
        assert_eq!(count(Kind::PrimitiveType), 20);
    }

    #[test]
    fn navigates() {
        let s = Schema::r4();
        let patient = s.root("Patient").unwrap();
        let (name, _) = s.child(patient, "name").unwrap();
        assert!(name.is_array());
        let hn = s.descend(patient, name, None).unwrap();
        assert_eq!(hn.path, "HumanName");
        assert!(s.child(hn, "family").is_some());
        assert!(s.child(patient, "birthdate").is_none());
        let (g, _) = s.child(patient, "gender").unwrap();
        assert_eq!(
            g.codes.as_ref().unwrap(),
            &["male", "female", "other", "unknown"]
        );
        let (contact, _) = s.child(patient, "contact").unwrap();
        let c = s.descend(patient, contact, None).unwrap();
        assert_eq!(c.path, "Patient.contact");
        assert!(s.child(c, "relationship").is_some());
        let obs = s.root("Observation").unwrap();
        let (v, t) = s.child(obs, "valueQuantity").unwrap();
        assert!(v.choice);
        assert_eq!(t.unwrap().code, "Quantity");
        assert!(s.child(obs, "valueFoo").is_none());
        let q = s.root("Questionnaire").unwrap();
        let (item, _) = s.child(q, "item").unwrap();
        let item_node = s.descend(q, item, None).unwrap();
        let (sub, _) = s.child(item_node, "item").unwrap();
        assert_eq!(
            s.descend(item_node, sub, None).unwrap().path,
            "Questionnaire.item"
        );
        let (subj, t) = s.child(obs, "subject").unwrap();
        assert!(t.unwrap().targets.contains(&"Patient"));
        assert!(!subj.is_array());
    }
}
