//! Tools beside the data path: the load generator, the zero-install demo, the pipeline
//! benchmark, the model benchmark and the drift benchmark; the registry from the command line
//! (`models`) and models from MLflow (`mlflow`).

pub mod bench;
pub mod bench_drift;
pub mod bench_model;
pub mod demo;
pub mod mlflow;
pub mod models;
pub mod produce;
