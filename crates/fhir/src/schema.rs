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
    /// Children of each path (the definition itself and its backbone
    /// elements), as indexes into `elements`, in order.
    children: FxHashMap<&'static str, Vec<usize>>,
    /// (node path, JSON property name) → (place in definition order,
    /// element index, type index): one hash instead of a scan per lookup.
    names: FxHashMap<(&'static str, &'static str), (usize, usize, Option<usize>)>,
}

impl Def {
    /// Builds the JSON-name index from `children`.
    fn indexed(mut self) -> Def {
        let mut names = FxHashMap::default();
        for (path, ix) in &self.children {
            for (i, &e) in ix.iter().enumerate() {
                let el = &self.elements[e];
                if el.choice {
                    for (t, n) in el.json_names.iter().enumerate() {
                        names
                            .entry((*path, *n))
                            .or_insert((i * 64 + t.min(63), e, Some(t)));
                    }
                } else {
                    let t = (el.types.len() == 1).then_some(0);
                    names.entry((*path, el.name)).or_insert((i * 64, e, t));
                }
            }
        }
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
}

/// The schema.
#[derive(Debug)]
pub struct Schema {
    defs: FxHashMap<&'static str, Def>,
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
            },
            None => TypeRef {
                code: t,
                targets: Vec::new(),
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
        let mut defs: FxHashMap<&'static str, Def> = FxHashMap::default();
        let mut current: Option<Def> = None;
        for line in table.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let mut f = line.split(' ');
            let first = f.next().unwrap_or_default();
            if let Some(name) = first.strip_prefix('@') {
                if let Some(d) = current.take() {
                    defs.insert(d.name, d.indexed());
                }
                let kind = match f.next() {
                    Some("resource") => Kind::Resource,
                    Some("complex-type") => Kind::ComplexType,
                    Some("primitive-type") => Kind::PrimitiveType,
                    _ => Kind::Logical,
                };
                let base = f.next().filter(|b| *b != "-");
                current = Some(Def {
                    name,
                    kind,
                    base,
                    elements: Vec::new(),
                    children: FxHashMap::default(),
                    names: FxHashMap::default(),
                });
                continue;
            }
            let Some(def) = current.as_mut() else {
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
            };
            let idx = def.elements.len();
            def.elements.push(el);
            def.children.entry(parent).or_default().push(idx);
        }
        if let Some(d) = current.take() {
            defs.insert(d.name, d.indexed());
        }
        Schema { defs }
    }

    /// Every definition.
    pub fn defs(&self) -> impl Iterator<Item = &Def> {
        self.defs.values()
    }

    /// A definition by name.
    pub fn def(&self, name: &str) -> Option<&Def> {
        self.defs.get(name)
    }

    /// True for resource types.
    pub fn is_resource(&self, name: &str) -> bool {
        self.defs
            .get(name)
            .is_some_and(|d| d.kind == Kind::Resource)
    }

    /// The root node of a resource or type.
    pub fn root(&self, name: &str) -> Option<Node<'_>> {
        let def = self.defs.get(name)?;
        Some(Node {
            def,
            path: def.name,
        })
    }

    /// The child elements of a node, in definition order.
    pub fn children<'s>(&'s self, node: Node<'s>) -> impl Iterator<Item = &'s Element> + 's {
        node.def
            .children
            .get(node.path)
            .into_iter()
            .flat_map(move |ix| ix.iter().map(move |i| &node.def.elements[*i]))
    }

    /// The element a JSON property name stands for, and the type it picks:
    /// `valueQuantity` under Observation is `value[x]` as Quantity. A
    /// leading `_` (primitive extensions) is not stripped here.
    pub fn child<'s>(
        &'s self,
        node: Node<'s>,
        json_name: &str,
    ) -> Option<(&'s Element, Option<&'s TypeRef>)> {
        self.child_at(node, json_name).map(|(_, el, ty)| (el, ty))
    }

    /// Like [`Schema::child`], with the element's place in definition order
    /// (for a choice, types of one element are ordered after each other:
    /// the place is `element × 64 + type`).
    pub fn child_at<'s>(
        &'s self,
        node: Node<'s>,
        json_name: &str,
    ) -> Option<(usize, &'s Element, Option<&'s TypeRef>)> {
        // `HashMap` is covariant in its key: look up with a shorter-lived name.
        let names: &FxHashMap<(&str, &str), (usize, usize, Option<usize>)> = &node.def.names;
        let (place, e, t) = *names.get(&(node.path, json_name))?;
        let el = node.def.elements.get(e)?;
        Some((place, el, t.and_then(|t| el.types.get(t))))
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
        if let Some(r) = el.content_ref {
            let def_name = r.split('.').next().unwrap_or(r);
            let def = self.defs.get(def_name)?;
            let path = def.elements.iter().find(|e| e.path == r).map(|e| e.path)?;
            return Some(Node { def, path });
        }
        let code = ty
            .map(|t| t.code)
            .or_else(|| el.types.first().map(|t| t.code))?;
        match code {
            "BackboneElement" | "Element"
                if el.path.contains('.') && node.def.children.contains_key(el.path) =>
            {
                Some(Node {
                    def: node.def,
                    path: el.path,
                })
            }
            c if is_primitive(c) || c == "Resource" => None,
            c => self.root(c),
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
