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
    /// `after(x, minutes)`: HL7 DTM plus some minutes → FHIR instant (an end from a start and a duration).
    After,
    /// `minutes(x)`: an HL7 duration (`M30`, `H1`, `30`) in minutes; nothing for `INDEF`.
    Minutes,
    /// `text(x)`: the text of the first component, unescaped.
    Text,
    /// `raw(x)`: the whole value as text, separators included.
    Raw,
    /// `lines(x)`: a text field whole, each repetition a line, empty ones
    /// (`a~~b`, a blank line) kept; one text per field.
    Lines,
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
    /// `coding(Table, x[, policy])`: a Coding (system, code, display).
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
    /// `where(x, test)`: the values of `x` for which `test` holds, with `.` each value in turn
    /// (`where(OBX[*]-5, OBX-2 != "ED")`: a path to the value's own segment reads that segment).
    Where,
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
    /// `before(a, b)`: true when HL7 DTM `a` is an earlier instant than `b`
    /// (the channel's time zone where either has no offset); false when
    /// either is missing or no date/time.
    Before,
    /// `system(x)`: an HL7 coding-system name (table 0396, `HL7nnnn`, an OID) as a FHIR system URI.
    System,
    /// `codesystem(x)`: like `system(x)`, always an absolute URI (`L` → `urn:hl7v2:0396:L`), for `Coding.system`.
    CodeSystem,
    /// `base64(x)`: the texts (joined by newlines) as base64, for attachments.
    Base64,
    /// `hexbase64(x)`: hexadecimal text (ED.4 `Hex`) as base64 of its bytes; not hex is an error.
    HexBase64,
    /// `base64data(x)`: base64 text with its line breaks and spaces taken out; nothing when it is
    /// not base64 (a placeholder such as `<Base64 encoded>`), so a mapping can say what to do then.
    Base64Data,
    /// `surname(x)`: an FN's surname (FN.1); when a sender leaves FN.1 empty
    /// and sends its parts (`&van der&Berg`), the parts joined by spaces.
    Surname,
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

/// One row of the table: function, name, fewest and most arguments, the
/// kinds of the leading arguments, result type, one result whatever the
/// arguments.
const fn sig(
    func: Func,
    name: &'static str,
    min: usize,
    max: usize,
    args: &'static [Arg],
    ret: Ty,
    single: bool,
) -> Sig {
    Sig {
        func,
        name,
        min,
        max,
        args,
        ret,
        single,
    }
}

/// Every function.
#[rustfmt::skip]
pub const FUNCTIONS: &[Sig] = &[
    sig(Func::Date, "date", 1, 1, V, Ty::Date, false),
    sig(Func::DateTime, "datetime", 1, 1, V, Ty::DateTime, false),
    sig(Func::Instant, "instant", 1, 1, V, Ty::Instant, false),
    sig(Func::Time, "time", 1, 1, V, Ty::Time, false),
    sig(Func::After, "after", 2, 2, V, Ty::Instant, true),
    sig(Func::Minutes, "minutes", 1, 1, V, Ty::Number, false),
    sig(Func::Text, "text", 1, 1, V, Ty::Text, false),
    sig(Func::Raw, "raw", 1, 1, V, Ty::Text, false),
    sig(Func::Lines, "lines", 1, 1, V, Ty::Text, false),
    sig(Func::Trim, "trim", 1, 1, V, Ty::Text, false),
    sig(Func::Upper, "upper", 1, 1, V, Ty::Text, false),
    sig(Func::Lower, "lower", 1, 1, V, Ty::Text, false),
    sig(Func::Concat, "concat", 1, usize::MAX, V, Ty::Text, true),
    sig(Func::Join, "join", 2, 2, V, Ty::Text, true),
    sig(Func::Split, "split", 2, 2, V, Ty::Text, false),
    sig(Func::Replace, "replace", 3, 3, V, Ty::Text, false),
    sig(Func::Substring, "substring", 2, 3, V, Ty::Text, false),
    sig(Func::Decimal, "decimal", 1, 1, V, Ty::Number, false),
    sig(Func::Integer, "integer", 1, 1, V, Ty::Number, false),
    sig(Func::Boolean, "boolean", 1, 1, V, Ty::Bool, false),
    sig(Func::Lookup, "lookup", 2, 4, TABLE, Ty::Code, false),
    sig(Func::Display, "display", 2, 2, TABLE, Ty::Text, false),
    sig(Func::Coding, "coding", 2, 3, TABLE, Ty::Json("Coding"), false),
    sig(Func::Exists, "exists", 1, 1, V, Ty::Bool, true),
    sig(Func::Empty, "empty", 1, 1, V, Ty::Bool, true),
    sig(Func::Count, "count", 1, 1, V, Ty::Number, true),
    sig(Func::First, "first", 1, 1, V, Ty::Any, true),
    sig(Func::Rest, "rest", 1, 1, V, Ty::Any, false),
    sig(Func::Last, "last", 1, 1, V, Ty::Any, true),
    sig(Func::Where, "where", 2, 2, V, Ty::Any, false),
    sig(Func::Coalesce, "coalesce", 1, usize::MAX, V, Ty::Any, false),
    sig(Func::If, "if", 3, 3, V, Ty::Any, false),
    sig(Func::Uuid, "uuid", 1, usize::MAX, V, Ty::Text, true),
    sig(Func::Ref, "ref", 1, 1, ALIAS, Ty::Json("Reference"), false),
    sig(Func::Id, "id", 1, 1, ALIAS, Ty::Text, false),
    sig(Func::Matches, "matches", 2, 2, V, Ty::Bool, true),
    sig(Func::IsDecimal, "isdecimal", 1, 1, V, Ty::Bool, true),
    sig(Func::Before, "before", 2, 2, V, Ty::Bool, true),
    sig(Func::System, "system", 1, 1, V, Ty::Text, false),
    sig(Func::CodeSystem, "codesystem", 1, 1, V, Ty::Text, false),
    sig(Func::HexBase64, "hexbase64", 1, 1, V, Ty::Text, false),
    sig(Func::Base64, "base64", 1, 1, V, Ty::Text, true),
    sig(Func::Base64Data, "base64data", 1, 1, V, Ty::Text, false),
    sig(Func::Surname, "surname", 1, 1, V, Ty::Text, false),
];

/// A function by name.
pub fn lookup(name: &str) -> Option<&'static Sig> {
    FUNCTIONS.iter().find(|s| s.name == name)
}
