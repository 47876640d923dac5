//! A window's report from its counts: every test of the [`Plan`], one correction over all of
//! them, the flags, and the effects and detectable shifts beside them.

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
use std::borrow::Cow;

use crate::stats::binned::{Divergence, chi_squared, divergence, divergence_from, grouped};
use crate::stats::dist::{binomial_two_sided, normal_two_sided};
use crate::stats::holm;
use crate::stats::joint::{ScoreSums, hotelling, pair};
use crate::stats::profile::Marginal;
use crate::stats::rank;

/// Missing values in a feature are tested exactly (binomial) below this many in window and
/// reference together, by the normal approximation above.
const EXACT_MISSING: f64 = 30.0;

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
        raw.push(missing_test(owner, c.missing[f], c.records, m, missing));
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

/// A window's counts of one distribution as numbers, and by the reference's deciles: what its
/// tests and its divergences both read.
struct Seen {
    counts: Vec<f64>,
    deciles: Vec<f64>,
}

impl Seen {
    fn new(counts: &[i64], prepared: &Prepared) -> Self {
        let counts = as_f64(counts);
        Seen {
            deciles: prepared.deciles.window(&counts),
            counts,
        }
    }

    /// The divergences from the reference's deciles.
    fn divergence(&self, prepared: &Prepared) -> Divergence {
        match &prepared.deciles.smoothed {
            Some(reference) => divergence_from(reference, &self.deciles),
            None => Divergence::default(),
        }
    }
}

fn as_f64<T: Copy + Into<i128>>(counts: &[T]) -> Vec<f64> {
    counts
        .iter()
        .map(|&c| Into::<i128>::into(c) as f64)
        .collect()
}

/// Location, scale and shape of one distribution (a feature's or the outputs').
fn distribution_tests(
    owner: Owner,
    seen: &Seen,
    m: &Marginal,
    prepared: &Prepared,
    weight: &dyn Fn(TestKind) -> f64,
) -> Vec<Raw> {
    let window = &seen.counts;
    let sums = rank::Sums::new(window, &m.scores);
    let (n, mr) = (sums.n, prepared.total);
    if n < MIN_TESTED_RECORDS as f64 || mr < 2.0 {
        return Vec::new();
    }
    let (mean_w, var_w) = sums.moments();
    let (mean_r, var_r) = prepared.moments;
    let sd_r = var_r.sqrt();
    let test = |kind, statistic: f64, p_value: f64, effect: f64| Raw {
        owner,
        test: Some(kind),
        statistic,
        p_value,
        effect,
        weight: weight(kind),
        extra: (0.0, 0.0),
    };
    let location = rank::location(&sums, &prepared.sums);
    let scale = rank::scale(&sums, &prepared.sums);
    let mut tests = vec![
        test(
            TestKind::Location,
            location,
            normal_two_sided(location),
            (mean_w - mean_r) / sd_r,
        ),
        test(
            TestKind::Scale,
            scale,
            normal_two_sided(scale),
            (var_w / var_r).sqrt() - 1.0,
        ),
    ];
    let groups = prepared.shape_groups(n);
    let shape = match &groups {
        Cow::Borrowed(_) => chi_squared(&seen.deciles, &groups.reference),
        Cow::Owned(groups) => chi_squared(&groups.window(window), &groups.reference),
    };
    tests.extend(shape.map(|s| test(TestKind::Shape, s.statistic, s.p_value, s.effect)));
    tests
}

/// The share of missing values: `k` of the window's `n` records against the reference's.
/// Given how many are missing in both, the window's count is hypergeometric under no change:
/// tested exactly (binomial) when few, by the normal approximation otherwise.
fn missing_test(owner: Owner, k: i64, n: i64, m: &Marginal, weight: f64) -> Raw {
    let (k, n, km, rows) = (k as f64, n as f64, m.missing as f64, m.rows() as f64);
    let total = k + km;
    let share = n / (n + rows);
    let big_n = n + rows;
    let variance = total * share * (1.0 - share) * (big_n - total) / (big_n - 1.0).max(1.0);
    let z = if variance > 0.0 {
        (k - total * share) / variance.sqrt()
    } else {
        0.0
    };
    let p_value = match total {
        0.0 => 1.0,
        t if t < EXACT_MISSING => binomial_two_sided(k as u64, t as u64, share),
        _ => normal_two_sided(z),
    };
    let h = |p: f64| 2.0 * p.sqrt().asin();
    Raw {
        owner,
        test: Some(TestKind::Missing),
        statistic: z,
        p_value,
        effect: h(k / n.max(1.0)) - h(km / rows.max(1.0)),
        weight,
        extra: (0.0, 0.0),
    }
}

/// The model's outputs: a classifier's class mix, a regressor's values (location, scale,
/// shape). A classifier's confidence is not tested: it depends on whether the model has
/// seen a row (a forest is surer on its own training rows than on new ones), so against
/// held-out rows it flags a replay of training data, and against training rows every
/// stream of new data. Its divergence and mean stay in the report.
fn output_tests(inputs: &Inputs, c: &WindowCounts) -> Vec<Raw> {
    let (plan, outputs) = (inputs.plan, &inputs.reference.outputs);
    let weight = plan.weight(Family::Outputs);
    match plan.class_mix {
        true => class_mix(&as_f64(&c.predictions), &as_f64(&outputs.classes), weight)
            .into_iter()
            .collect(),
        false => distribution_tests(
            Owner::Output,
            &Seen::new(&c.predictions, &plan.prepared.outputs),
            &outputs.distribution,
            &plan.prepared.outputs,
            &|kind| plan.output_weight(kind),
        ),
    }
}

/// The chi-square test of the predicted classes, classes that expect fewer than 5 records
/// in the window taken together.
fn class_mix(window: &[f64], reference: &[f64], weight: f64) -> Option<Raw> {
    let (n, m): (f64, f64) = (window.iter().sum(), reference.iter().sum());
    if m == 0.0 || n == 0.0 {
        return None;
    }
    let rare = |&r: &f64| n * r / m < 5.0;
    let groups: Vec<usize> = (reference.iter())
        .scan(0, |next, r| {
            Some(match rare(r) {
                true => 0,
                false => {
                    *next += 1;
                    *next
                }
            })
        })
        .collect();
    let k = groups.iter().max().map_or(1, |g| g + 1);
    let test = chi_squared(
        &grouped(window, &groups, k),
        &grouped(reference, &groups, k),
    )?;
    Some(Raw {
        owner: Owner::Output,
        test: Some(TestKind::ClassMix),
        statistic: test.statistic,
        p_value: test.p_value,
        effect: test.effect,
        weight,
        extra: (0.0, 0.0),
    })
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
                missing_share: c.missing[f] as f64 / c.records.max(1) as f64,
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

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::{Binomial, Distribution};

    use super::*;
    use crate::stats::wilson::binomial_interval;

    /// Rejections at 5% of 10,000 null windows, against a fresh reference each.
    fn null_rejections(mut p_value: impl FnMut(&mut rand::rngs::StdRng) -> f64, seed: u64) -> u64 {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..10_000)
            .map(|_| u64::from(p_value(&mut rng) < 0.05))
            .sum()
    }

    #[test]
    fn the_missing_share_tests_null_rate_is_nominal_and_rare_missing_values_stay_under_it() {
        let (lo, hi) = binomial_interval(10_000, 0.05, 0.999);
        // 10% missing, window 200 records, reference 400 rows: the normal approximation.
        let missing = |share: f64| {
            move |rng: &mut rand::rngs::StdRng| {
                let window = Binomial::new(200, share).unwrap().sample(rng) as i64;
                let reference = Binomial::new(400, share).unwrap().sample(rng);
                let m = Marginal::from_counts(Vec::new(), vec![400 - reference], reference);
                missing_test(Owner::Feature(0), window, 200, &m, 1.0).p_value
            }
        };
        let hits = null_rejections(missing(0.1), 1);
        assert!(
            (lo..=hi).contains(&hits),
            "{hits} of 10,000 at 10% missing, not in [{lo}, {hi}]"
        );
        // 0.5% missing: few in all, tested exactly, which is conservative (discrete).
        let hits = null_rejections(missing(0.005), 2);
        assert!(hits <= hi, "{hits} of 10,000 at 0.5% missing, over {hi}");
    }

    #[test]
    fn the_class_mix_tests_null_rate_is_nominal() {
        let shares = [0.5, 0.3, 0.15, 0.05];
        let draw = |n: usize, rng: &mut rand::rngs::StdRng| {
            let mut counts = vec![0.0; shares.len()];
            for _ in 0..n {
                let u: f64 = rng.random();
                let k = (shares.iter().scan(0.0, |c, s| {
                    *c += s;
                    Some(*c)
                }))
                .position(|c| u < c)
                .unwrap_or(shares.len() - 1);
                counts[k] += 1.0;
            }
            counts
        };
        let hits = null_rejections(
            |rng| {
                let (window, reference) = (draw(300, rng), draw(500, rng));
                class_mix(&window, &reference, 1.0).unwrap().p_value
            },
            3,
        );
        let (lo, hi) = binomial_interval(10_000, 0.05, 0.999);
        assert!(
            (lo..=hi).contains(&hits),
            "{hits} of 10,000, not in [{lo}, {hi}]"
        );
    }
}
