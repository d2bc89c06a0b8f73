//! FHIR R4 (4.0.1) for the engine: schema tables generated from the
//! official definitions, JSON and XML both ways, validation to
//! OperationOutcome. No I/O.
//!
//! # Why our own
//! `fhir-sdk` has STU3, R4B and R5 but no R4, and drops unknown elements;
//! the `fhir` crate's XML is broken, it drops unknown elements too, and it
//! takes minutes to compile. Here the resource tree is our own
//! [`tree::Json`] (order-preserving, decimals kept as written, strings
//! borrowed from the input, each member knowing its place in the schema;
//! `serde_json::Value` converts both ways for code off the hot paths), and
//! what the engine needs to know about R4 — every definition's elements,
//! cardinality, types, choices and required codes — is a compact table
//! generated from the official definitions (`src/r4/schema.txt`, see
//! [`generate`]).
//!
//! ```
//! let body = br#"{"resourceType":"Patient","gender":"F","birthdate":"1970"}"#;
//! let patient = fhir::json::parse(body)?;
//! let issues = fhir::validate::validate(&patient);
//! assert_eq!(issues.len(), 2); // unknown element `birthdate`, code F not in the value set
//! let outcome = fhir::validate::operation_outcome(&issues);
//! assert_eq!(outcome["issue"][0]["expression"][0], "Patient.gender");
//! # Ok::<(), fhir::json::JsonError>(())
//! ```

pub mod generate;
pub mod json;
pub mod primitive;
pub mod schema;
pub mod search;
pub mod tree;
pub mod validate;
pub mod xml;

pub use schema::Schema;
pub use serde_json::Value;
