//! Kafka in and out: the consumer's context, the producer that writes every output, which
//! input offsets are safe to commit, and topic creation.

pub mod admin;
pub mod offsets;
pub mod retry;
pub mod sink;
pub mod source;
