//! Windows tested one after another outside the pipeline (the drift benchmark, tests): the
//! pipeline's window code, plan and sequential alarm, without its clock or metrics.

use super::compute::Inputs;
use super::plan::{DriftSettings, Plan};
use super::report::DriftReport;
use super::sample::FeatureSample;
use super::sequential::Sequential;
use super::window::{DriftWindow, WindowCounts};
use crate::model::drift_reference::DriftReference;
use crate::model::{ModelMetadata, Predicted};

/// Tests windows of one model against its reference, in order.
pub struct Tester<'a> {
    metadata: &'a ModelMetadata,
    reference: &'a DriftReference,
    plan: Plan,
    sequential: Sequential,
    /// The window the records are counted in, built once (its bin tables take a few ms).
    window: DriftWindow,
}

impl<'a> Tester<'a> {
    /// A tester of `metadata`'s model against `reference`, under `settings`.
    pub fn new(
        metadata: &'a ModelMetadata,
        reference: &'a DriftReference,
        settings: &DriftSettings,
    ) -> Self {
        Tester {
            plan: Plan::new(metadata, reference, settings),
            sequential: Sequential::new(&metadata.features, metadata.classes.is_empty()),
            window: DriftWindow::new(reference, &metadata.classes),
            metadata,
            reference,
        }
    }

    /// The same tester, its windows counting the features of one record in `k`, chosen at
    /// random (`drift::sample`; a window in the pipeline chooses k by its rate).
    pub fn sampling_features(mut self, k: i64) -> Self {
        self.window = (self.window).sampling_features(FeatureSample::one_in_every(k));
        self
    }

    /// The plan the windows are tested by.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Counts `records` (features, prediction, true class) into a window, all at once as
    /// the drift thread counts a batch.
    pub fn count<'r>(
        &mut self,
        records: impl IntoIterator<Item = (&'r [f64], Predicted, Option<i32>)>,
    ) -> WindowCounts {
        let (mut rows, mut scored) = (Vec::new(), Vec::new());
        for (row, predicted, label) in records {
            rows.extend_from_slice(row);
            scored.push((predicted, label));
        }
        self.window.observe_rows(&rows, &scored);
        self.window.take()
    }

    /// The report of the next window's `counts` (after feeding the sequential alarm).
    pub fn report(&mut self, counts: WindowCounts) -> DriftReport {
        let outcome = self.sequential.update(&counts, self.reference, &self.plan);
        let inputs = Inputs {
            metadata: self.metadata,
            reference: self.reference,
            plan: &self.plan,
            sequential: &outcome,
        };
        DriftReport::compute(&inputs, Default::default(), counts)
    }
}
