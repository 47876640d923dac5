//! The HTTP sidecar: `/health`, `/ready` and `/metrics` for Kubernetes probes and
//! Prometheus, and the REST twin of the pipeline (`rest`). At the top of the crate: it serves
//! what the layers below it report and score.

pub(crate) mod rest;
pub mod sidecar;
pub mod status;
