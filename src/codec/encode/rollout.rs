//! The rollout topic's records (`schemas/rollout.avsc`): one decision on a canary rollout's
//! stage, with the figures it was made on.

use apache_avro::Schema;
use serde::{Deserialize, Serialize};

use super::AvroCodec;

/// The rollout decision schema (`schemas/rollout.avsc`).
pub const ROLLOUT_SCHEMA: &str = include_str!("../../../schemas/rollout.avsc");

/// One rollout decision, shaped like `schemas/rollout.avsc`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolloutRecord {
    pub model_name: String,
    pub candidate: String,
    pub baseline: String,
    pub decision: RolloutDecisionKind,
    pub stage: i32,
    pub share: f64,
    pub next_share: Option<f64>,
    pub reason: Option<String>,
    pub figures: String,
    pub revision: i64,
    pub instance_id: String,
    pub decided_at: i64,
}

/// A rollout decision's kind, as the schema's enum names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RolloutDecisionKind {
    Advance,
    Promote,
    RollBack,
}

impl AvroCodec {
    /// A codec for the bundled rollout decision schema.
    pub fn rollouts() -> Self {
        AvroCodec {
            schema: Schema::parse_str(ROLLOUT_SCHEMA).expect("bundled schema parses"),
        }
    }
}
