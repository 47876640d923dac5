//! Bytes to features and back: input framing and decoding by field name, the hot path's
//! Avro plan, and the encoding of predictions and drift reports.

pub mod avro;
pub mod decode;
pub mod encode;
