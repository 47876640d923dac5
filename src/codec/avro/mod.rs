//! A small Avro binary codec for the hot path: decoding walks a plan compiled once from the
//! writer schema (no `Value` tree, no allocation), and encoding writes primitives straight
//! into a reused buffer. apache-avro parses the schemas and is the reference in tests.

pub(crate) mod binary;
pub(crate) mod plan;

pub use binary::{AvroError, Cursor, Writer};
pub use plan::{CompiledSchema, Plan, Scalar};
