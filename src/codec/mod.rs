//! Bytes to features and back: input framing and decoding by field name, the hot path's
//! Avro plan, the field records are routed by, and the encoding of predictions and drift
//! reports, and the schema registry that writer schemas come from and output schemas go to.

pub(crate) mod avro;
pub mod dead_letter;
pub mod decode;
pub mod encode;
pub mod registry;
pub(crate) mod route;
