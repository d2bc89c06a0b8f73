//! FHIR XML ⇄ the JSON tree, by the R4 rules.
//!
//! Owns the XML form: the resource element in the `http://hl7.org/fhir`
//! namespace; primitives as `value` attributes with their `id` and
//! extensions as children (JSON's `_element` companions); element ids and
//! extension `url`s as attributes; resources inside elements
//! (`contained`, `Bundle.entry.resource`) wrapped in their type's element;
//! the narrative `div` kept as XHTML, byte for byte; elements written in
//! definition order. Reading needs the schema to know which elements
//! repeat and which are numbers or booleans in JSON; elements the schema
//! does not know are kept (as strings or objects) for validation to report.

use serde_json::{Map, Number, Value};

use crate::primitive::{JsonKind, json_kind};
use crate::schema::{Node, Schema, is_primitive};

/// XML that could not be read as FHIR.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    /// Not well-formed XML.
    #[error("malformed XML at byte {position}: {message}")]
    Syntax {
        /// Byte offset.
        position: u64,
        /// The parser's message.
        message: String,
    },
    /// Well-formed, but not a FHIR resource.
    #[error("{0}")]
    Shape(String),
}

const FHIR_NS: &str = "http://hl7.org/fhir";

// ---------------------------------------------------------------- reading

#[derive(Debug, Default)]
struct Elem {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Elem>,
    /// For XHTML `div`: the element exactly as written.
    raw: Option<String>,
}

fn syntax(reader: &quick_xml::Reader<&[u8]>, e: impl std::fmt::Display) -> XmlError {
    XmlError::Syntax {
        position: reader.buffer_position(),
        message: e.to_string(),
    }
}

/// Deepest nesting accepted (serde_json refuses JSON deeper than 128): the
/// tree is walked recursively afterwards, so a hostile document must not
/// get that far.
const MAX_DEPTH: usize = 100;

fn parse_tree(text: &str) -> Result<Elem, XmlError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(text.as_bytes());
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Elem> = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let ev = reader.read_event().map_err(|e| syntax(&reader, e))?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(s) | Event::Empty(s)
                if s.local_name().as_ref() == b"div" && !stack.is_empty() =>
            {
                if !empty {
                    let end = s.to_end().into_owned();
                    reader
                        .read_to_end(end.name())
                        .map_err(|e| syntax(&reader, e))?;
                }
                let after = reader.buffer_position() as usize;
                let raw = text
                    .get(before..after)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(Elem {
                        name: "div".into(),
                        raw: Some(raw),
                        ..Elem::default()
                    });
                }
            }
            Event::Start(s) | Event::Empty(s) => {
                let mut el = Elem {
                    name: String::from_utf8_lossy(s.local_name().as_ref()).into_owned(),
                    ..Elem::default()
                };
                if stack.is_empty() {
                    // The resource is in the FHIR namespace (as default or
                    // under its prefix); its children inherit it.
                    let ns_attr = match s.name().prefix() {
                        Some(p) => format!("xmlns:{}", String::from_utf8_lossy(p.as_ref())),
                        None => "xmlns".to_string(),
                    };
                    let ns = s
                        .attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == ns_attr.as_bytes())
                        .map(|a| String::from_utf8_lossy(&a.value).into_owned());
                    if ns.as_deref() != Some(FHIR_NS) {
                        return Err(XmlError::Shape(format!(
                            "<{}> is not in the FHIR namespace: write <{} xmlns=\"{FHIR_NS}\">",
                            el.name, el.name
                        )));
                    }
                }
                for a in s.attributes() {
                    let a = a.map_err(|e| syntax(&reader, e))?;
                    let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        continue;
                    }
                    let val = a
                        .unescape_value()
                        .map_err(|e| syntax(&reader, e))?
                        .into_owned();
                    el.attrs.push((key, val));
                }
                if empty {
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => return Ok(el),
                    }
                } else {
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::Shape(format!(
                            "elements nest more than {MAX_DEPTH} deep; no FHIR resource does"
                        )));
                    }
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(syntax(&reader, "unexpected end tag"));
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(done),
                    None => return Ok(done),
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| syntax(&reader, e))?;
                if !s.trim().is_empty() {
                    return Err(XmlError::Shape(format!(
                        "text {:?} inside <{}>: FHIR XML carries values in `value` attributes",
                        s.chars().take(20).collect::<String>(),
                        stack.last().map(|e| e.name.as_str()).unwrap_or("?")
                    )));
                }
            }
            Event::CData(_) => {
                return Err(XmlError::Shape(
                    "CDATA sections are not allowed in FHIR XML".into(),
                ));
            }
            Event::DocType(_) => {
                return Err(XmlError::Shape(
                    "DOCTYPE declarations are not allowed in FHIR XML".into(),
                ));
            }
            Event::Eof => {
                return Err(syntax(
                    &reader,
                    "the document ends before the resource does",
                ));
            }
            _ => {}
        }
    }
}

/// Reads a FHIR XML resource into the JSON tree.
pub fn from_xml(text: &str) -> Result<Value, XmlError> {
    let root = parse_tree(text)?;
    let schema = Schema::r4();
    if !schema.is_resource(&root.name) {
        return Err(XmlError::Shape(format!(
            "<{}> is not a FHIR resource type",
            root.name
        )));
    }
    Ok(resource(schema, &root))
}

fn resource(schema: &Schema, e: &Elem) -> Value {
    let mut obj = Map::new();
    obj.insert("resourceType".into(), Value::String(e.name.clone()));
    if let Some(node) = schema.root(&e.name) {
        fill(schema, Some(node), e, &mut obj, true);
    }
    Value::Object(obj)
}

fn typed(code: &str, s: &str) -> Value {
    match json_kind(code) {
        JsonKind::Bool => match s {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(s.into()),
        },
        JsonKind::Number => serde_json::from_str::<Number>(s)
            .map(Value::Number)
            .unwrap_or_else(|_| Value::String(s.into())),
        JsonKind::String => Value::String(s.into()),
    }
}

fn fill(
    schema: &Schema,
    node: Option<Node<'_>>,
    e: &Elem,
    obj: &mut Map<String, Value>,
    is_resource: bool,
) {
    let extension = node.is_some_and(|n| n.path == "Extension");
    for (k, v) in &e.attrs {
        if !is_resource && (k == "id" || (k == "url" && extension)) {
            obj.insert(k.clone(), Value::String(v.clone()));
        }
    }
    // Group children by name, in order.
    let mut names: Vec<&str> = Vec::new();
    for c in &e.children {
        if !names.contains(&c.name.as_str()) {
            names.push(&c.name);
        }
    }
    for name in names {
        let items: Vec<&Elem> = e.children.iter().filter(|c| c.name == name).collect();
        let found = node.and_then(|n| {
            schema
                .child(n, name)
                .map(|(el, ty)| (n, el, ty.or_else(|| el.types.first())))
        });
        let Some((n, el, ty)) = found else {
            // Unknown: keep it for validation to report.
            let vals: Vec<Value> = items.iter().map(|c| unknown(schema, c)).collect();
            obj.insert(
                name.to_string(),
                if vals.len() == 1 {
                    vals.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(vals)
                },
            );
            continue;
        };
        let code = ty.map(|t| t.code).unwrap_or("");
        let mut values = Vec::new();
        let mut exts = Vec::new();
        for c in &items {
            if code == "xhtml" {
                values.push(Value::String(c.raw.clone().unwrap_or_default()));
                exts.push(Value::Null);
            } else if is_primitive(code) && el.content_ref.is_none() {
                let v = c
                    .attrs
                    .iter()
                    .find(|(k, _)| k == "value")
                    .map(|(_, v)| typed(code, v))
                    .unwrap_or(Value::Null);
                values.push(v);
                let mut x = Map::new();
                fill(schema, schema.root("Element"), c, &mut x, false);
                exts.push(if x.is_empty() {
                    Value::Null
                } else {
                    Value::Object(x)
                });
            } else if code == "Resource" {
                values.push(
                    c.children
                        .first()
                        .map(|r| resource(schema, r))
                        .unwrap_or(Value::Null),
                );
            } else {
                let mut o = Map::new();
                fill(schema, schema.descend(n, el, ty), c, &mut o, false);
                values.push(Value::Object(o));
            }
        }
        let has_ext = exts.iter().any(|x| !x.is_null());
        let has_val = values.iter().any(|x| !x.is_null());
        if el.is_array() {
            if has_val {
                obj.insert(name.to_string(), Value::Array(values));
            }
            if has_ext {
                obj.insert(format!("_{name}"), Value::Array(exts));
            }
        } else if items.len() > 1 {
            // A single-valued element given more than once: kept as a list
            // for validation to refuse, not cut to the first.
            obj.insert(name.to_string(), Value::Array(values));
            if has_ext {
                obj.insert(format!("_{name}"), Value::Array(exts));
            }
        } else {
            if has_val || !is_primitive(code) {
                obj.insert(
                    name.to_string(),
                    values.into_iter().next().unwrap_or(Value::Null),
                );
            }
            if has_ext {
                obj.insert(
                    format!("_{name}"),
                    exts.into_iter().next().unwrap_or(Value::Null),
                );
            }
        }
    }
}

fn unknown(schema: &Schema, c: &Elem) -> Value {
    if c.children.is_empty()
        && let Some((_, v)) = c.attrs.iter().find(|(k, _)| k == "value")
    {
        return Value::String(v.clone());
    }
    let mut o = Map::new();
    fill(schema, None, c, &mut o, false);
    Value::Object(o)
}

// ---------------------------------------------------------------- writing

fn esc(s: &str, out: &mut String) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            '\t' => out.push_str("&#x9;"),
            c => out.push(c),
        }
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Writes a resource as FHIR XML (elements in definition order).
pub fn to_xml(resource: &Value) -> Result<String, XmlError> {
    let mut v = resource.clone();
    crate::json::canonicalize(&mut v);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_resource(Schema::r4(), &v, &mut out, true)?;
    Ok(out)
}

fn write_resource(
    schema: &Schema,
    v: &Value,
    out: &mut String,
    root: bool,
) -> Result<(), XmlError> {
    let rt = v
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| XmlError::Shape("a resource needs resourceType".into()))?;
    let Value::Object(obj) = v else {
        return Err(XmlError::Shape("a resource must be an object".into()));
    };
    out.push('<');
    out.push_str(rt);
    out.push_str(" xmlns=\"");
    out.push_str(FHIR_NS);
    out.push_str("\">");
    write_children(schema, schema.root(rt), obj, out, true)?;
    out.push_str("</");
    out.push_str(rt);
    out.push('>');
    let _ = root;
    Ok(())
}

fn write_children(
    schema: &Schema,
    node: Option<Node<'_>>,
    obj: &Map<String, Value>,
    out: &mut String,
    is_resource: bool,
) -> Result<(), XmlError> {
    let extension = node.is_some_and(|n| n.path == "Extension");
    for (key, val) in obj {
        if key == "resourceType" || (!is_resource && (key == "id" || (key == "url" && extension))) {
            continue;
        }
        // `_x` with no `x`: a primitive with only an id/extensions.
        let (key, val) = match key.strip_prefix('_') {
            Some(base) if obj.contains_key(base) => continue,
            Some(base) => {
                let nulls = match val {
                    Value::Array(a) => Value::Array(vec![Value::Null; a.len()]),
                    _ => Value::Null,
                };
                (base.to_string(), nulls)
            }
            None => (key.clone(), val.clone()),
        };
        let (key, val) = (key.as_str(), &val);
        let found = node.and_then(|n| {
            schema
                .child(n, key)
                .map(|(el, ty)| (n, el, ty.or_else(|| el.types.first())))
        });
        let ext = obj.get(&format!("_{key}"));
        let items: Vec<&Value> = match val {
            Value::Array(a) => a.iter().collect(),
            v => vec![v],
        };
        let ext_items: Vec<Option<&Value>> = match ext {
            Some(Value::Array(a)) => a.iter().map(Some).collect(),
            Some(v) => vec![Some(v)],
            None => Vec::new(),
        };
        for (i, item) in items.iter().enumerate() {
            let ext = ext_items.get(i).copied().flatten();
            match found {
                Some((_, _, Some(t))) if t.code == "xhtml" => {
                    if let Some(s) = item.as_str() {
                        out.push_str(s);
                    }
                }
                Some((_, _, Some(t))) if is_primitive(t.code) => {
                    write_primitive(schema, key, item, ext, out)?
                }
                Some((_, _, Some(t))) if t.code == "Resource" => {
                    out.push('<');
                    out.push_str(key);
                    out.push('>');
                    write_resource(schema, item, out, false)?;
                    out.push_str("</");
                    out.push_str(key);
                    out.push('>');
                }
                Some((n, el, ty)) => {
                    write_complex(schema, key, schema.descend(n, el, ty), item, out)?
                }
                None => match scalar(item) {
                    Some(s) => write_primitive(schema, key, &Value::String(s), ext, out)?,
                    None => write_complex(schema, key, None, item, out)?,
                },
            }
        }
    }
    Ok(())
}

fn write_attrs(obj: &Map<String, Value>, out: &mut String, extension: bool) {
    for k in ["id", "url"] {
        if k == "url" && !extension {
            continue;
        }
        if let Some(s) = obj.get(k).and_then(Value::as_str) {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            esc(s, out);
            out.push('"');
        }
    }
}

fn write_primitive(
    schema: &Schema,
    key: &str,
    v: &Value,
    ext: Option<&Value>,
    out: &mut String,
) -> Result<(), XmlError> {
    out.push('<');
    out.push_str(key);
    let ext_obj = ext.and_then(Value::as_object);
    if let Some(o) = ext_obj {
        write_attrs(o, out, false);
    }
    if let Some(s) = scalar(v) {
        out.push_str(" value=\"");
        esc(&s, out);
        out.push('"');
    }
    match ext_obj {
        Some(o) if o.keys().any(|k| k != "id") => {
            out.push('>');
            write_children(schema, schema.root("Element"), o, out, false)?;
            out.push_str("</");
            out.push_str(key);
            out.push('>');
        }
        _ => out.push_str("/>"),
    }
    Ok(())
}

fn write_complex(
    schema: &Schema,
    key: &str,
    node: Option<Node<'_>>,
    v: &Value,
    out: &mut String,
) -> Result<(), XmlError> {
    let Value::Object(o) = v else {
        return Err(XmlError::Shape(format!("{key} must be an object")));
    };
    out.push('<');
    out.push_str(key);
    write_attrs(o, out, node.is_some_and(|n| n.path == "Extension"));
    out.push('>');
    write_children(schema, node, o, out, false)?;
    out.push_str("</");
    out.push_str(key);
    out.push('>');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_primitives_extensions_choices_and_narrative() {
        let v = crate::json::parse(
            br#"{"resourceType":"Observation","id":"o1","text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>a &amp; b</p></div>"},
                "status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}],"text":"HR"},
                "valueQuantity":{"value":72.50,"unit":"/min"},
                "_status":{"id":"s1","extension":[{"url":"http://example.org/x","valueString":"y"}]},
                "component":[{"code":{"text":"c"},"valueBoolean":true}]}"#,
        )
        .unwrap();
        let xml = to_xml(&v).unwrap();
        assert!(
            xml.contains(r#"<Observation xmlns="http://hl7.org/fhir"><id value="o1"/>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"<status id="s1" value="final"><extension url="http://example.org/x"><valueString value="y"/></extension></status>"#), "{xml}");
        assert!(xml.contains(r#"<value value="72.50"/>"#), "{xml}");
        assert!(
            xml.contains(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>a &amp; b</p></div>"#),
            "{xml}"
        );
        let back = from_xml(&xml).unwrap();
        let mut want = v.clone();
        crate::json::canonicalize(&mut want);
        assert_eq!(back, want);
        assert_eq!(
            crate::json::to_string(&back["valueQuantity"]),
            r#"{"value":72.50,"unit":"/min"}"#
        );
    }

    #[test]
    fn bundles_with_resources_and_arrays() {
        let v = json!({"resourceType":"Bundle","type":"transaction","entry":[
            {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","name":[{"given":["A","B"]}],"_birthDate":{"extension":[{"url":"u","valueDateTime":"2020-01-01T00:00:00Z"}]}},
             "request":{"method":"POST","url":"Patient"}}]});
        let xml = to_xml(&v).unwrap();
        assert!(xml.contains("<resource><Patient xmlns=\"http://hl7.org/fhir\"><name><given value=\"A\"/><given value=\"B\"/></name><birthDate><extension url=\"u\">"), "{xml}");
        assert_eq!(from_xml(&xml).unwrap(), v);
    }

    #[test]
    fn malformed_and_foreign_xml_are_errors() {
        assert!(matches!(
            from_xml("<Patient xmlns=\"http://hl7.org/fhir\"><name>"),
            Err(XmlError::Syntax { .. })
        ));
        assert!(matches!(from_xml("<Nope/>"), Err(XmlError::Shape(_))));
        assert!(matches!(
            from_xml("<Patient><gender>male</gender></Patient>"),
            Err(XmlError::Shape(_))
        ));
        let unknown = from_xml(
            "<Patient xmlns=\"http://hl7.org/fhir\"><birthdate value=\"1970\"/></Patient>",
        )
        .unwrap();
        assert_eq!(unknown["birthdate"], "1970");
        // The resource is in the FHIR namespace, as default or by prefix.
        let e = from_xml("<Patient><gender value=\"male\"/></Patient>").unwrap_err();
        assert!(e.to_string().contains("not in the FHIR namespace"), "{e}");
        let prefixed = from_xml(
            "<f:Patient xmlns:f=\"http://hl7.org/fhir\"><f:gender value=\"male\"/></f:Patient>",
        )
        .unwrap();
        assert_eq!(prefixed["gender"], "male");
        // A single-valued element twice is kept whole for validation to
        // refuse, not cut to the first.
        let twice = from_xml(
            "<Patient xmlns=\"http://hl7.org/fhir\"><gender value=\"male\"/><gender value=\"female\"/></Patient>",
        )
        .unwrap();
        assert_eq!(twice["gender"], json!(["male", "female"]));
        let issues = crate::validate::validate(&twice);
        assert!(
            issues[0].location == "Patient.gender" && issues[0].message.contains("2 of them"),
            "{issues:?}"
        );
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_stack_overflow() {
        let n = 50_000;
        let doc = format!(
            "<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>",
            "<extension url=\"x\">".repeat(n),
            "</extension>".repeat(n)
        );
        match from_xml(&doc) {
            Err(XmlError::Shape(m)) => assert!(m.contains("nest more than"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
