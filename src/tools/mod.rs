//! Tools beside the data path: the load generator, the zero-install demo and the benchmark.

pub mod bench;
pub mod demo;
pub mod produce;
