//! Tools beside the data path: the load generator, the zero-install demo, the pipeline
//! benchmark, the model benchmark and the drift benchmark.

pub mod bench;
pub mod bench_drift;
pub mod bench_model;
pub mod demo;
pub mod models;
pub mod produce;
