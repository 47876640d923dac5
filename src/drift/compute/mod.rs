//! A window's report from its counts: every test of the [`Plan`], one correction over all of
//! them, the flags, and the effects and detectable shifts beside them.

mod distribution;

use distribution::{Seen, as_f64, distribution_tests, missing_test, output_tests};

use super::plan::{Family, MIN_TESTED_RECORDS, Plan};
use super::prepared::Prepared;
use super::report::{
    ClassRecall, DriftReport, FeatureDrift, Flag, PairDrift, TestKind, TestResult, VectorDrift,
    WindowOrigin,
};
use super::sequential::Outcome;
use super::window::WindowCounts;
use crate::model::ModelMetadata;
use crate::model::drift_reference::DriftReference;
use crate::stats::binned::{Divergence, divergence};
use crate::stats::holm;
use crate::stats::joint::{ScoreSums, hotelling, pair};
use crate::stats::profile::Marginal;

/// Who a test belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    Feature(usize),
    Pair(usize, usize),
    Vector,
    Output,
}

/// One test before the correction.
#[derive(Debug, Clone)]
struct Raw {
    owner: Owner,
    test: Option<TestKind>,
    statistic: f64,
    p_value: f64,
    effect: f64,
    weight: f64,
    /// The pair's correlations, or the vector's rank.
    extra: (f64, f64),
}

impl Raw {
    fn flag(&self, adjusted: f64, plan: &Plan) -> Flag {
        if self.effect.abs() < plan.min_effect || adjusted.is_nan() {
            Flag::Ok
        } else if adjusted <= plan.window_rates.alert {
            Flag::Alert
        } else if adjusted <= plan.window_rates.warn {
            Flag::Warn
        } else {
            Flag::Ok
        }
    }
}

/// What the report is computed from.
pub struct Inputs<'a> {
    /// The model.
    pub metadata: &'a ModelMetadata,
    /// Its drift reference.
    pub reference: &'a DriftReference,
    /// Its tests.
    pub plan: &'a Plan,
    /// The sequential alarm's state after this window.
    pub sequential: &'a Outcome,
}

impl DriftReport {
    /// The report of `counts` (a window from `origin`).
    pub fn compute(inputs: &Inputs, origin: WindowOrigin, counts: WindowCounts) -> Self {
        let tested = counts.records >= MIN_TESTED_RECORDS;
        let seen: Vec<Seen> = (counts.features.iter())
            .zip(&inputs.plan.prepared.features)
            .map(|(counts, prepared)| Seen::new(counts, prepared))
            .collect();
        let raw = if tested {
            all_tests(inputs, &counts, &seen)
        } else {
            Vec::new()
        };
        let adjusted = holm::adjusted(
            &raw.iter().map(|r| r.p_value).collect::<Vec<_>>(),
            &raw.iter().map(|r| r.weight).collect::<Vec<_>>(),
        );
        let results: Vec<(Raw, f64, Flag)> = (raw.into_iter().zip(adjusted))
            .map(|(r, a)| {
                let flag = r.flag(a, inputs.plan);
                (r, a, flag)
            })
            .collect();
        let features = features(inputs, &counts, &seen, &results, tested);
        let untested = (!tested).then(|| {
            format!(
                "{} records scored: at least {MIN_TESTED_RECORDS} are needed to test a window",
                counts.records
            )
        });
        let mut report = base_report(inputs, origin, counts);
        report.features = features;
        report.outputs = test_results(&results, |o| o == Owner::Output);
        report.pairs = pairs(inputs, &results);
        report.vector = vector(&results);
        output_flags(&mut report, inputs.metadata.classes.is_empty());
        // A sequential alarm flags its window too: the rates count it.
        let sequential = (!report.sequential.is_empty()).then_some(Flag::Alert);
        report.flag = (report.features.iter().map(|f| f.flag))
            .chain(sequential)
            .chain(report.pairs.iter().map(|p| p.flag))
            .chain(report.vector.iter().map(|v| v.flag))
            .chain(report.outputs.iter().map(|t| t.flag))
            .max()
            .unwrap_or(Flag::Ok);
        report.tests = results.len() as i32;
        report.untested = untested;
        report
    }
}

/// Every test of the window, with its weight.
fn all_tests(inputs: &Inputs, c: &WindowCounts, seen: &[Seen]) -> Vec<Raw> {
    let (plan, reference) = (inputs.plan, inputs.reference);
    let mut raw = Vec::with_capacity(5 * reference.features.len() + plan.pairs.len() + 4);
    let weight = |kind| plan.feature_weight(kind);
    for (f, m) in reference.features.iter().enumerate() {
        let owner = Owner::Feature(f);
        let prepared = &plan.prepared.features[f];
        raw.extend(distribution_tests(owner, &seen[f], m, prepared, &weight));
        let missing = weight(TestKind::Missing);
        let n = c.feature_records();
        raw.push(missing_test(owner, c.missing[f], n, m, missing));
    }
    if let Some(joint) = &reference.joint {
        let sums = ScoreSums {
            rows: c.complete as f64,
            sums: c.score_sums.clone(),
            products: c.score_products.clone(),
        };
        let enough = c.complete >= MIN_TESTED_RECORDS;
        for reference in plan.pairs.iter().filter(|_| enough) {
            let t = pair(&sums, reference);
            raw.push(Raw {
                owner: Owner::Pair(reference.i, reference.j),
                test: None,
                statistic: t.z,
                p_value: t.p_value,
                effect: t.window - t.reference,
                weight: plan.weight(Family::Pairs),
                extra: (t.reference, t.window),
            });
        }
        let vector =
            (plan.factor.as_ref()).and_then(|f| hotelling(&sums, joint, f).filter(|_| enough));
        raw.extend(vector.map(|t| Raw {
            owner: Owner::Vector,
            test: None,
            statistic: t.t2,
            p_value: t.p_value,
            effect: t.distance,
            weight: plan.weight(Family::Vector),
            extra: (t.rank as f64, 0.0),
        }));
    }
    raw.extend(output_tests(inputs, c));
    raw
}

/// The tests of `owner`s that pass `keep`, as published.
fn test_results(results: &[(Raw, f64, Flag)], keep: impl Fn(Owner) -> bool) -> Vec<TestResult> {
    (results.iter())
        .filter(|(r, _, _)| keep(r.owner))
        .filter_map(test_result)
        .collect()
}

/// `features` features' tests, in one pass over the results (not one a feature).
fn feature_results(results: &[(Raw, f64, Flag)], features: usize) -> Vec<Vec<TestResult>> {
    let mut tests = vec![Vec::new(); features];
    for result in results {
        if let (Owner::Feature(f), Some(test)) = (result.0.owner, test_result(result)) {
            tests[f].push(test);
        }
    }
    tests
}

/// A test's result, if it is one of a distribution's.
fn test_result((r, adjusted, flag): &(Raw, f64, Flag)) -> Option<TestResult> {
    Some(TestResult {
        test: r.test?,
        statistic: r.statistic,
        p_value: r.p_value,
        adjusted_p: *adjusted,
        effect: r.effect,
        flag: *flag,
    })
}

/// Every feature's tests, effects, divergences and detectable shift.
fn features(
    inputs: &Inputs,
    c: &WindowCounts,
    seen: &[Seen],
    results: &[(Raw, f64, Flag)],
    tested: bool,
) -> Vec<FeatureDrift> {
    let (reference, plan) = (inputs.reference, inputs.plan);
    let each = feature_results(results, reference.features.len());
    (inputs.metadata.features.iter().zip(&reference.features))
        .zip(each)
        .enumerate()
        .map(|(f, ((name, m), tests))| {
            let present: i64 = c.features[f].iter().sum();
            let (mean_shift, sd_ratio) = raw_effects(m, c, f, present);
            FeatureDrift {
                name: name.clone(),
                divergence: seen[f].divergence(&plan.prepared.features[f]),
                flag: tests.iter().map(|t| t.flag).max().unwrap_or(Flag::Ok),
                p_value: tests.iter().map(|t| t.adjusted_p).fold(1.0, f64::min),
                tests,
                mean_shift,
                sd_ratio,
                missing_share: c.missing[f] as f64 / c.feature_records().max(1) as f64,
                detectable_shift: (tested && present > 0)
                    .then(|| plan.detectable_shift(present as f64, m.present() as f64)),
                sequential: inputs.sequential.levels.get(f).copied().unwrap_or(0.0),
            }
        })
        .collect()
}

/// The standardized mean shift and ratio of standard deviations, from the window's sums of
/// deviations from the reference mean.
fn raw_effects(
    m: &Marginal,
    c: &WindowCounts,
    f: usize,
    present: i64,
) -> (Option<f64>, Option<f64>) {
    let Some(moments) = m.moments.filter(|x| x.variance > 0.0 && present > 0) else {
        return (None, None);
    };
    let n = present as f64;
    let sd = moments.variance.sqrt();
    let mean = c.deviations[f] / n;
    let variance = (c.squares[f] / n - mean * mean).max(0.0);
    (Some(mean / sd), Some(variance.sqrt() / sd))
}

/// PSI, KL and JS over the reference's deciles.
fn deciles(window: &[i64], prepared: &Prepared) -> Divergence {
    Seen::new(window, prepared).divergence(prepared)
}

/// The flagged pairs.
fn pairs(inputs: &Inputs, results: &[(Raw, f64, Flag)]) -> Vec<PairDrift> {
    let names = &inputs.metadata.features;
    (results.iter())
        .filter(|(_, _, flag)| *flag != Flag::Ok)
        .filter_map(|(r, adjusted, flag)| match r.owner {
            Owner::Pair(i, j) => Some(PairDrift {
                a: names[i].clone(),
                b: names[j].clone(),
                reference: r.extra.0,
                window: r.extra.1,
                statistic: r.statistic,
                adjusted_p: *adjusted,
                flag: *flag,
            }),
            _ => None,
        })
        .collect()
}

fn vector(results: &[(Raw, f64, Flag)]) -> Option<VectorDrift> {
    (results.iter())
        .find(|(r, _, _)| r.owner == Owner::Vector)
        .map(|(r, adjusted, flag)| VectorDrift {
            statistic: r.statistic,
            features: r.extra.0 as i32,
            p_value: r.p_value,
            adjusted_p: *adjusted,
            distance: r.effect,
            flag: *flag,
        })
}

/// The prediction and confidence flags from the output tests.
fn output_flags(report: &mut DriftReport, regressor: bool) {
    let worst = |keep: &dyn Fn(TestKind) -> bool| {
        (report.outputs.iter())
            .filter(|t| keep(t.test))
            .map(|t| t.flag)
            .max()
            .unwrap_or(Flag::Ok)
    };
    report.prediction_flag = match regressor {
        true => worst(&|_| true),
        false => worst(&|t| t == TestKind::ClassMix),
    };
}

/// The report's parts that need no test: origin, divergences of the outputs, means,
/// accuracy and recall.
fn base_report(inputs: &Inputs, origin: WindowOrigin, counts: WindowCounts) -> DriftReport {
    let c = &counts;
    let (metadata, reference) = (inputs.metadata, inputs.reference);
    let outputs = &reference.outputs;
    let regressor = metadata.classes.is_empty();
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    let prediction = match regressor {
        true => deciles(&c.predictions, &inputs.plan.prepared.outputs),
        false => divergence(&as_f64(&outputs.classes), &as_f64(&c.predictions)),
    };
    DriftReport {
        model_name: metadata.name.clone(),
        model_version: metadata.version.clone(),
        origin,
        features: Vec::new(),
        prediction,
        prediction_flag: Flag::Ok,
        confidence: (!regressor).then(|| deciles(&c.confidence, &inputs.plan.prepared.outputs)),
        confidence_flag: None,
        mean_confidence: (c.records > 0 && !regressor).then(|| c.confidence_sum / c.records as f64),
        mean_value: (c.records > 0 && regressor).then(|| c.value_sum / c.records as f64),
        invalid_share: ratio(c.invalid, c.records + c.invalid).unwrap_or(0.0),
        accuracy: ratio(c.correct, c.labeled),
        recall: recall(metadata, c),
        flag: Flag::Ok,
        notice: None,
        outputs: Vec::new(),
        pairs: Vec::new(),
        vector: None,
        sequential: inputs.sequential.alarms.clone(),
        untested: None,
        tests: 0,
        alert_rate: inputs.plan.rates.alert,
        warn_rate: inputs.plan.rates.warn,
        reference_rows: reference.rows as i64,
        estimated: super::estimate::estimate(c, reference),
        counts,
    }
}

fn recall(metadata: &ModelMetadata, c: &WindowCounts) -> Vec<ClassRecall> {
    (metadata.classes.iter())
        .zip(c.class_support.iter().zip(&c.class_hits))
        .enumerate()
        .map(|(i, (&label, (&support, &hits)))| ClassRecall {
            label,
            name: metadata.class_names.as_ref().map(|names| names[i].clone()),
            support,
            recall: (support > 0).then(|| hits as f64 / support as f64),
        })
        .collect()
}
