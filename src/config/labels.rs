//! Labels that arrive later than their features, on a topic of their own: `driftwood run`'s
//! `--labels-topic`, `--label-horizon` and `--performance-*` flags.

use std::time::Duration;

use clap::Args;
use rdkafka::ClientConfig;

use crate::codec::decode::InputFormat;
use crate::error::{Error, Result};
use crate::pipeline::labels::LabelSettings;
use crate::pipeline::review::ReviewSettings;

/// The delayed-labels flags.
#[derive(Debug, Clone, Args)]
pub struct LabelArgs {
    /// Topic of label records (Avro `GroundTruth`, `schemas/ground_truth.avsc`), keyed like
    /// the input so that a label lands on the partition numbered as its record's. Each is
    /// joined to its record's prediction by id, and realized performance is published per
    /// window of labels. Needs the range assignor (the default), and as many partitions as
    /// the input. [default: off]
    #[arg(long, env = "DRIFTWOOD_LABELS_TOPIC")]
    pub labels_topic: Option<String>,

    /// A label more than this after its prediction's event time is counted `late`, not
    /// joined. Predictions are kept twice as long.
    #[arg(long, env = "DRIFTWOOD_LABEL_HORIZON", default_value = "1h", value_parser = humantime::parse_duration)]
    pub label_horizon: Duration,

    /// Topic windows of realized performance (Avro `PerformanceWindow`,
    /// `schemas/performance.avsc`) are written to, keyed by labels partition.
    #[arg(
        long,
        env = "DRIFTWOOD_PERFORMANCE_TOPIC",
        default_value = "performance"
    )]
    pub performance_topic: String,

    /// Label records per window of one labels partition.
    #[arg(long, env = "DRIFTWOOD_PERFORMANCE_WINDOW", default_value_t = 1000)]
    pub performance_window: usize,

    /// Keep the predictions awaiting their labels on disk in this directory (fjall, an
    /// embedded LSM store), not in memory: for horizons whose predictions do not fit in
    /// memory, at about 10 µs of CPU per label instead of 0.3. The directory is emptied at
    /// start (a partition's state is read back from the topics on assignment either way).
    /// [default: in memory]
    #[arg(long, env = "DRIFTWOOD_AWAITING_DIR")]
    pub awaiting_dir: Option<std::path::PathBuf>,

    /// Label record framing: `avro` (the bundled schema), or `confluent` (each record's
    /// writer schema fetched from the schema registry by its id).
    #[arg(
        long,
        env = "DRIFTWOOD_LABELS_FORMAT",
        value_enum,
        default_value = "avro"
    )]
    pub labels_format: InputFormat,

    /// Topic scored records chosen for someone to label go to (Avro `ReviewRequest`,
    /// `schemas/review.avsc`: the prediction, the features, why it was chosen), keyed like the
    /// input. [default: off]
    #[arg(long, env = "DRIFTWOOD_REVIEW_TOPIC")]
    pub review_topic: Option<String>,

    /// Share of all records sent for review, chosen by position.
    #[arg(long, env = "DRIFTWOOD_REVIEW_SHARE", default_value_t = 0.001)]
    pub review_share: f64,

    /// Records whose confidence is at or below this quantile of the model's confidence on
    /// its reference rows are sent for review too (`least_sure`; 0: none).
    #[arg(long, env = "DRIFTWOOD_REVIEW_LEAST_SURE", default_value_t = 0.01)]
    pub review_least_sure: f64,
}

impl LabelArgs {
    /// Checks the flags against the input topic and whether a schema registry is set.
    pub fn validate(&self, input_topic: &str, registry: bool) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if self.labels_format == InputFormat::Confluent && !registry {
            return bad("--labels-format confluent needs --schema-registry-url".into());
        }
        for (flag, share) in [
            ("--review-share", self.review_share),
            ("--review-least-sure", self.review_least_sure),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return bad(format!("{flag} {share} is not in [0, 1]"));
            }
        }
        if self.review_topic.as_deref() == Some(input_topic) {
            return bad("--review-topic must differ from --input-topic".into());
        }
        let Some(topic) = &self.labels_topic else {
            return Ok(());
        };
        if topic == input_topic || topic == &self.performance_topic {
            return bad(format!(
                "--labels-topic {topic:?} must differ from --input-topic and --performance-topic"
            ));
        }
        if self.performance_window == 0 {
            return bad("--performance-window must be at least 1".into());
        }
        if self.label_horizon.is_zero() {
            return bad("--label-horizon must be longer than zero".into());
        }
        Ok(())
    }

    /// With a labels topic, refuses a consumer whose assignor could give a labels partition
    /// and the input partition of the same number to two members: the range assignor does
    /// not (librdkafka's default with the classic protocol; `group.remote.assignor=range`
    /// with KIP-848's).
    pub fn check_assignor(&self, consumer: &ClientConfig) -> Result<()> {
        if self.labels_topic.is_none() {
            return Ok(());
        }
        let (key, value) = match consumer.get("group.protocol") {
            Some("consumer") => (
                "group.remote.assignor",
                consumer.get("group.remote.assignor"),
            ),
            _ => (
                "partition.assignment.strategy",
                consumer
                    .get("partition.assignment.strategy")
                    .or(Some("range")),
            ),
        };
        let first = value.and_then(|v| v.split(',').next()).map(str::trim);
        if first == Some("range") {
            return Ok(());
        }
        Err(Error::Config(format!(
            "--labels-topic needs the range assignor, which gives a labels partition and the \
             input partition of the same number to one member: set {key}=range (it is {value:?})"
        )))
    }

    /// The review queue's settings, when there is one.
    pub fn review(&self) -> Option<ReviewSettings> {
        Some(ReviewSettings {
            topic: self.review_topic.clone()?,
            share: self.review_share,
            least_sure: self.review_least_sure,
        })
    }

    /// The loop's settings, when labels come on a topic of their own.
    pub fn settings(&self) -> Option<LabelSettings> {
        Some(LabelSettings {
            topic: self.labels_topic.clone()?,
            performance_topic: self.performance_topic.clone(),
            horizon: self.label_horizon,
            window_records: self.performance_window,
            framed: self.labels_format == InputFormat::Confluent,
            awaiting_dir: self.awaiting_dir.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_need_the_range_assignor() {
        let args = |topic: Option<&str>| LabelArgs {
            labels_topic: topic.map(Into::into),
            label_horizon: Duration::from_secs(60),
            performance_topic: "performance".into(),
            performance_window: 10,
            labels_format: InputFormat::Avro,
            awaiting_dir: None,
            review_topic: None,
            review_share: 0.0,
            review_least_sure: 0.0,
        };
        let mut consumer = ClientConfig::new();
        assert!(
            args(Some("labels")).check_assignor(&consumer).is_ok(),
            "the default"
        );
        consumer.set("partition.assignment.strategy", "cooperative-sticky");
        let refused = args(Some("labels")).check_assignor(&consumer).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("partition.assignment.strategy=range"),
            "{refused}"
        );
        assert!(
            args(None).check_assignor(&consumer).is_ok(),
            "no labels topic"
        );
        consumer.set("group.protocol", "consumer");
        assert!(
            args(Some("labels")).check_assignor(&consumer).is_err(),
            "uniform by default"
        );
        consumer.set("group.remote.assignor", "range");
        assert!(args(Some("labels")).check_assignor(&consumer).is_ok());
    }
}
