//! The model: training data ([`dataset`]), training ([`train`]), the artifact on disk
//! ([`artifact`]), drift baselines ([`baseline`]) and the compiled forest that scores
//! ([`forest`]).

pub mod artifact;
pub mod baseline;
pub mod dataset;
pub mod forest;
pub mod train;

pub use artifact::{Model, ModelMetadata};
pub use forest::{Forest, Votes};
