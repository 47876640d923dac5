//! The model: training data ([`dataset`]), training ([`train`]), the artifact on disk
//! ([`artifact`]), drift baselines (`baseline`) and references ([`drift_reference`]), and the
//! compiled forest that scores
//! ([`forest`]); the general tree engine ([`ensemble`]) and the ONNX models it imports
//! ([`onnx`]).

pub mod artifact;
pub(crate) mod baseline;
pub mod calibrate;
pub mod dataset;
pub mod drift_reference;
pub(crate) mod engine;
pub mod ensemble;
pub mod evaluate;
pub mod forest;
pub mod import;
pub mod mlflow;
pub mod onnx;
pub mod registry;
pub mod rollout;
pub(crate) mod serving;
#[cfg(test)]
mod testing;
pub mod train;
pub(crate) mod watch;

pub use artifact::{Model, ModelMetadata};
pub use engine::{Engine, Labelled, Predicted, Scored};
pub use forest::Forest;
pub use serving::Serving;
