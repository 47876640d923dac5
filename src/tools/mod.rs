//! Tools beside the data path: the load generator, the zero-install demo, the pipeline
//! benchmark and the model benchmark.

pub mod bench;
pub mod bench_model;
pub mod demo;
pub mod models;
pub mod produce;
