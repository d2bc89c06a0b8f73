//! The one function registry of the mapping language: names, argument
//! counts, what each returns. Implementations live in `runtime`; this is
//! what the compiler checks calls against and what `docs/mapping.md` lists.

use super::compile::Ty;

/// A built-in function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    /// `date(x)`: HL7 DT/DTM → FHIR date (precision kept).
    Date,
    /// `datetime(x)`: HL7 DTM → FHIR dateTime (offset from the value or the channel's time zone).
    DateTime,
    /// `instant(x)`: HL7 DTM → FHIR instant (missing parts are zero).
    Instant,
    /// `time(x)`: HL7 TM → FHIR time.
    Time,
    /// `text(x)`: the text of the first component, unescaped.
    Text,
    /// `raw(x)`: the whole value as text, separators included.
    Raw,
    /// `trim(x)`
    Trim,
    /// `upper(x)`
    Upper,
    /// `lower(x)`
    Lower,
    /// `concat(a, b, ...)`: texts joined, empty ones skipped; literal text (a `" "` separator) kept as written.
    Concat,
    /// `join(list, separator)`
    Join,
    /// `split(x, separator)`: many texts.
    Split,
    /// `replace(x, from, to)`
    Replace,
    /// `substring(x, start, length)` (start from 0).
    Substring,
    /// `decimal(x)`: a decimal, written as given.
    Decimal,
    /// `integer(x)`
    Integer,
    /// `boolean(x)`: Y/N, 1/0, true/false.
    Boolean,
    /// `lookup(Table, x[, policy[, default]])`: the translated code.
    Lookup,
    /// `display(Table, x)`: the translated code's display.
    Display,
    /// `coding(Table, x)`: a Coding (system, code, display).
    Coding,
    /// `exists(x)`
    Exists,
    /// `empty(x)`
    Empty,
    /// `count(x)`
    Count,
    /// `first(x)`
    First,
    /// `last(x)`
    Last,
    /// `rest(x)`: every value but the first.
    Rest,
    /// `coalesce(a, b, ...)`: the first that has a value.
    Coalesce,
    /// `if(condition, then, else)`
    If,
    /// `uuid(a, b, ...)`: a name-based UUID (v5) of the values.
    Uuid,
    /// `ref(alias)`: a Reference to a resource made in this Bundle.
    Ref,
    /// `id(alias)`: the id of a resource made in this Bundle.
    Id,
    /// `matches(x, pattern)`: `*`/`?` wildcards.
    Matches,
    /// `isdecimal(x)`: true when every value is a decimal number (`decimal(x)` would take it).
    IsDecimal,
    /// `system(x)`: an HL7 coding-system name (table 0396, `HL7nnnn`, an OID) as a FHIR system URI.
    System,
    /// `codesystem(x)`: like `system(x)`, always an absolute URI (`L` → `urn:hl7v2:0396:L`), for `Coding.system`.
    CodeSystem,
    /// `base64(x)`: the texts (joined by newlines) as base64, for attachments.
    Base64,
    /// `hexbase64(x)`: hexadecimal text (ED.4 `Hex`) as base64 of its bytes; not hex is an error.
    HexBase64,
}

/// What an argument must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Any expression.
    Value,
    /// A vocabulary table name.
    Table,
    /// A resource alias.
    Alias,
}

/// A function's signature.
pub struct Sig {
    /// The function.
    pub func: Func,
    /// Name as written.
    pub name: &'static str,
    /// Fewest arguments.
    pub min: usize,
    /// Most arguments (`usize::MAX` for any).
    pub max: usize,
    /// Kinds of the leading arguments (the rest are values).
    pub args: &'static [Arg],
    /// The result type.
    pub ret: Ty,
    /// The result is one value whatever the arguments.
    pub single: bool,
}

const V: &[Arg] = &[];
const TABLE: &[Arg] = &[Arg::Table, Arg::Value];
const ALIAS: &[Arg] = &[Arg::Alias];

/// Every function.
pub const FUNCTIONS: &[Sig] = &[
    Sig {
        func: Func::Date,
        name: "date",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Date,
        single: false,
    },
    Sig {
        func: Func::DateTime,
        name: "datetime",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::DateTime,
        single: false,
    },
    Sig {
        func: Func::Instant,
        name: "instant",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Instant,
        single: false,
    },
    Sig {
        func: Func::Time,
        name: "time",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Time,
        single: false,
    },
    Sig {
        func: Func::Text,
        name: "text",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Raw,
        name: "raw",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Trim,
        name: "trim",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Upper,
        name: "upper",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Lower,
        name: "lower",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Concat,
        name: "concat",
        min: 1,
        max: usize::MAX,
        args: V,
        ret: Ty::Text,
        single: true,
    },
    Sig {
        func: Func::Join,
        name: "join",
        min: 2,
        max: 2,
        args: V,
        ret: Ty::Text,
        single: true,
    },
    Sig {
        func: Func::Split,
        name: "split",
        min: 2,
        max: 2,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Replace,
        name: "replace",
        min: 3,
        max: 3,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Substring,
        name: "substring",
        min: 2,
        max: 3,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Decimal,
        name: "decimal",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Number,
        single: false,
    },
    Sig {
        func: Func::Integer,
        name: "integer",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Number,
        single: false,
    },
    Sig {
        func: Func::Boolean,
        name: "boolean",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Bool,
        single: false,
    },
    Sig {
        func: Func::Lookup,
        name: "lookup",
        min: 2,
        max: 4,
        args: TABLE,
        ret: Ty::Code,
        single: false,
    },
    Sig {
        func: Func::Display,
        name: "display",
        min: 2,
        max: 2,
        args: TABLE,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Coding,
        name: "coding",
        min: 2,
        max: 2,
        args: TABLE,
        ret: Ty::Json("Coding"),
        single: false,
    },
    Sig {
        func: Func::Exists,
        name: "exists",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Bool,
        single: true,
    },
    Sig {
        func: Func::Empty,
        name: "empty",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Bool,
        single: true,
    },
    Sig {
        func: Func::Count,
        name: "count",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Number,
        single: true,
    },
    Sig {
        func: Func::First,
        name: "first",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Any,
        single: true,
    },
    Sig {
        func: Func::Rest,
        name: "rest",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Any,
        single: false,
    },
    Sig {
        func: Func::Last,
        name: "last",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Any,
        single: true,
    },
    Sig {
        func: Func::Coalesce,
        name: "coalesce",
        min: 1,
        max: usize::MAX,
        args: V,
        ret: Ty::Any,
        single: false,
    },
    Sig {
        func: Func::If,
        name: "if",
        min: 3,
        max: 3,
        args: V,
        ret: Ty::Any,
        single: false,
    },
    Sig {
        func: Func::Uuid,
        name: "uuid",
        min: 1,
        max: usize::MAX,
        args: V,
        ret: Ty::Text,
        single: true,
    },
    Sig {
        func: Func::Ref,
        name: "ref",
        min: 1,
        max: 1,
        args: ALIAS,
        ret: Ty::Json("Reference"),
        single: false,
    },
    Sig {
        func: Func::Id,
        name: "id",
        min: 1,
        max: 1,
        args: ALIAS,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Matches,
        name: "matches",
        min: 2,
        max: 2,
        args: V,
        ret: Ty::Bool,
        single: true,
    },
    Sig {
        func: Func::IsDecimal,
        name: "isdecimal",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Bool,
        single: true,
    },
    Sig {
        func: Func::System,
        name: "system",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::CodeSystem,
        name: "codesystem",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::HexBase64,
        name: "hexbase64",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: false,
    },
    Sig {
        func: Func::Base64,
        name: "base64",
        min: 1,
        max: 1,
        args: V,
        ret: Ty::Text,
        single: true,
    },
];

/// A function by name.
pub fn lookup(name: &str) -> Option<&'static Sig> {
    FUNCTIONS.iter().find(|s| s.name == name)
}
