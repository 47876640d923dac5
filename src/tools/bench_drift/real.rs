//! Real data: the bundled model's data set replayed (as the issue that asked for these tests
//! measured the old PSI rule), and the time-ordered data sets in the `nannyml` wheel,
//! window by window against their reference period.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::cell::{Tally, count, metadata};
use super::peers::{Header, Peers};
use super::{BenchDriftArgs, Output, Row};
use crate::drift::{DriftReport, DriftSettings, Flag, Tester};
use crate::error::{Error, Result};
use crate::model::drift_reference::DriftReference;
use crate::model::{Model, ModelMetadata, Predicted};

/// The old rule: a feature's PSI over the reference's deciles at 0.1 warns, at 0.25 alerts.
fn psi_rule(report: &DriftReport, level: f64) -> bool {
    (report.features.iter().map(|f| f.divergence.psi))
        .chain([report.prediction.psi])
        .any(|psi| psi >= level)
}

/// Counts `rows` (row-major, `predicted` for each) into one window and reports it.
pub(super) fn test(
    tester: &mut Tester,
    p: usize,
    rows: &[f64],
    predicted: &[Predicted],
) -> DriftReport {
    let records = rows
        .chunks(p)
        .zip(predicted)
        .map(|(row, &prediction)| (row, prediction, None));
    let counts = tester.count(records);
    tester.report(counts)
}

/// The bundled model's data set, replayed in windows of 1,000 and 5,000 records drawn at
/// random, without a shift and with one random feature moved 0.25 standard deviations.
pub fn bundled(args: &BenchDriftArgs, peers: Option<&Peers>, out: &mut Output) -> Result<()> {
    let model = Model::open(None)?;
    let data = crate::model::dataset::Dataset::breast_cancer();
    let p = data.feature_names.len();
    let sd: Vec<f64> = (0..p)
        .map(|f| {
            let n = data.len() as f64;
            let mean = data.rows.iter().map(|r| r[f]).sum::<f64>() / n;
            (data.rows.iter().map(|r| (r[f] - mean).powi(2)).sum::<f64>() / n).sqrt()
        })
        .collect();
    for n in [1000, 5000] {
        for (k, shift) in [0.0, 0.25].into_iter().enumerate() {
            let replay = Replay {
                model: &model,
                data: &data,
                sd: &sd,
                n,
                shift,
            };
            let seed = args.seed ^ 0xb0 ^ ((n as u64) << 16) ^ k as u64;
            replay.run(args, seed, peers, out)?;
        }
    }
    Ok(())
}

/// Windows of the bundled data set drawn at random, one random feature shifted.
struct Replay<'a> {
    model: &'a Model,
    data: &'a crate::model::dataset::Dataset,
    sd: &'a [f64],
    n: usize,
    shift: f64,
}

impl Replay<'_> {
    fn scenario(&self) -> String {
        match self.shift {
            0.0 => "no shift".to_string(),
            s => format!("mean {s:.2} sd"),
        }
    }

    /// `n` records drawn at random, with one random feature shifted, row-major; and which.
    fn window(&self, rng: &mut StdRng) -> (Vec<f64>, usize) {
        let p = self.sd.len();
        let feature = rng.random_range(0..p);
        let mut rows = Vec::with_capacity(self.n * p);
        for _ in 0..self.n {
            let mut row = self.data.rows[rng.random_range(0..self.data.len())].clone();
            row[feature] += self.shift * self.sd[feature];
            rows.extend(row);
        }
        (rows, feature)
    }

    /// Runs the windows through driftwood, the old PSI rule and the peers, and writes rows.
    fn run(
        &self,
        args: &BenchDriftArgs,
        seed: u64,
        peers: Option<&Peers>,
        out: &mut Output,
    ) -> Result<()> {
        let (model, p, scenario) = (self.model, self.sd.len(), self.scenario());
        let windows = if self.shift == 0.0 {
            args.null_windows
        } else {
            args.shift_windows
        };
        let mut settings = DriftSettings::new("bench".into());
        settings.window_records = self.n as i64;
        let mut tester = Tester::new(&model.metadata, model.drift_reference(), &settings);
        let mut rng = StdRng::seed_from_u64(seed);
        let shared = (if self.shift == 0.0 { 2 } else { 1 } * args.peer_windows).min(windows);
        let reference_rows = model.reference_rows().unwrap_or_default();
        let header = Header {
            features: p,
            feature_names: &model.metadata.features,
            reference_rows: reference_rows.len() / p,
            window_rows: self.n,
            windows: shared,
            scenario: format!("bundled {scenario}"),
        };
        let mut peer_run = peers
            .map(|peers| peers.start(&header, reference_rows))
            .transpose()?;
        let (mut tally, mut old_warn, mut old_alert) = (Tally::default(), 0, 0);
        for w in 0..windows {
            let (rows, feature) = self.window(&mut rng);
            let report = test(&mut tester, p, &rows, &model.engine.predict_all(&rows));
            count(
                &mut tally,
                &report,
                report.features[feature].flag == Flag::Alert,
            );
            old_warn += u64::from(psi_rule(&report, 0.1));
            old_alert += u64::from(psi_rule(&report, 0.25));
            if let Some(run) = peer_run.as_mut().filter(|_| w < shared) {
                run.window(&rows)?;
            }
        }
        let counts = [
            ("driftwood alert", tally.alerts),
            ("driftwood warn", tally.warns),
            ("psi-alert (old rule)", old_alert),
            ("psi-warn (old rule)", old_warn),
        ];
        for (tool, flagged) in counts {
            out.row(Row::new(
                "bundled",
                tool,
                &scenario,
                self.n,
                (flagged, tally.windows),
            ))?;
        }
        let peer_tallies = match peer_run {
            Some(run) => tally_peers(run.finish()?),
            None => BTreeMap::new(),
        };
        for (tool, t) in peer_tallies {
            out.row(Row::new(
                "bundled",
                &tool,
                &scenario,
                self.n,
                (t.alerts, t.windows),
            ))?;
        }
        Ok(())
    }
}

fn tally_peers(verdicts: Vec<super::peers::Verdict>) -> BTreeMap<String, Tally> {
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    for v in verdicts {
        let t = tallies.entry(v.tool).or_default();
        t.windows += 1;
        t.alerts += u64::from(v.alert == Some(true));
        t.seconds += v.seconds;
    }
    tallies
}

/// A data set of the `nannyml` wheel: its features, reference and analysis rows.
pub(super) struct Data {
    name: String,
    pub(super) features: Vec<String>,
    pub(super) classes: Vec<String>,
    pub(super) reference: Table,
    pub(super) analysis: Table,
    pub(super) chunk: usize,
    /// The first analysis chunk the data set's documentation says has drifted.
    drift_from: usize,
}

/// Rows (row-major; categories as their index among the sorted values, NaN where empty) and
/// the model's predictions on them.
#[derive(Default)]
pub(super) struct Table {
    pub(super) rows: Vec<f64>,
    pub(super) predicted: Vec<Predicted>,
}

/// Each data set with the chunk its documentation says the drift starts at (chunks of the
/// documented size): the car loans' and the multiclass set's sixth chunk; the census's
/// fourteenth (2017, a mild shift that grows).
const DATA_SETS: [(&str, usize); 4] = [
    ("synthetic_car_loan", 5),
    ("synthetic_car_loan_dq", 5),
    ("mc", 5),
    ("employment_MA", 13),
];

/// The nannyml data sets, chunk by chunk.
pub fn nannyml(args: &BenchDriftArgs, peers: Option<&Peers>, out: &mut Output) -> Result<()> {
    let (manifest, _) = manifest(args)?;
    for (name, drift_from) in DATA_SETS {
        let data = load(&manifest, name, drift_from)?;
        chunks(&data, peers, out)?;
    }
    Ok(())
}

/// The manifest `scripts/drift-peers/extract_datasets.py` writes beside the data sets, and
/// its path.
pub(super) fn manifest(args: &BenchDriftArgs) -> Result<(serde_json::Value, PathBuf)> {
    let path = args.real_data.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::tool("bench-drift", format!(
            "{}: {e}; write it with `$(scripts/py-env.sh scripts/drift-peers/requirements.txt) scripts/drift-peers/extract_datasets.py`",
            path.display()
        ))
    })?;
    let manifest = serde_json::from_str(&text)
        .map_err(|e| Error::tool("bench-drift", format!("{}: {e}", path.display())))?;
    Ok((manifest, path))
}

/// Tests every analysis chunk of `data` and writes, per tool, the chunks flagged before and
/// after the documented drift, with the flags chunk by chunk.
fn chunks(data: &Data, peers: Option<&Peers>, out: &mut Output) -> Result<()> {
    let p = data.features.len();
    let (metadata, reference) = model_of(data);
    let mut settings = DriftSettings::new("bench".into());
    settings.window_records = data.chunk as i64;
    let mut tester = Tester::new(&metadata, &reference, &settings);
    let analysed = data.analysis.predicted.len();
    // The peers read windows of one size: a short last chunk is theirs to skip.
    let full_chunks = analysed / data.chunk;
    let header = Header {
        features: p,
        feature_names: &data.features,
        reference_rows: data.reference.predicted.len(),
        window_rows: data.chunk,
        windows: full_chunks,
        scenario: data.name.clone(),
    };
    let start = |peers: &Peers| peers.start(&header, &data.reference.rows);
    let mut peer_run = peers.map(start).transpose()?;
    let mut flags: BTreeMap<String, String> = BTreeMap::new();
    for c in 0..analysed.div_ceil(data.chunk) {
        let span = c * data.chunk..((c + 1) * data.chunk).min(analysed);
        let chunk_rows = &data.analysis.rows[span.start * p..span.end * p];
        let report = test(&mut tester, p, chunk_rows, &data.analysis.predicted[span]);
        let symbol = match report.flag {
            Flag::Alert => 'A',
            Flag::Warn => 'w',
            Flag::Ok => '.',
        };
        flags.entry("driftwood".into()).or_default().push(symbol);
        let sequential = if report.sequential.is_empty() {
            '.'
        } else {
            'S'
        };
        (flags.entry("driftwood sequential".into()).or_default()).push(sequential);
        if let Some(run) = peer_run.as_mut().filter(|_| c < full_chunks) {
            run.window(chunk_rows)?;
        }
        let flagged: Vec<&str> = (report.features.iter())
            .filter(|f| f.flag == Flag::Alert)
            .map(|f| f.name.as_str())
            .collect();
        let (pairs, class_mix) = (report.pairs.len(), report.prediction_flag);
        println!(
            "  {} chunk {c:>2}: {symbol} {flagged:?} pairs {pairs} class mix {class_mix:?}",
            data.name
        );
    }
    if let Some(run) = peer_run {
        let mut verdicts = run.finish()?;
        verdicts.sort_by_key(|v| v.window);
        for v in verdicts {
            let symbol = match v.alert {
                Some(true) => 'A',
                Some(false) => '.',
                None => '?',
            };
            flags.entry(v.tool).or_default().push(symbol);
        }
    }
    for (tool, symbols) in flags {
        write_chunks(out, data, &tool, &symbols)?;
    }
    Ok(())
}

/// The data set's model as driftwood sees it: its features and classes, and the drift
/// reference of its reference period with the model's predictions there.
pub(super) fn model_of(data: &Data) -> (ModelMetadata, DriftReference) {
    let p = data.features.len();
    let mut metadata = metadata(p, (0..data.classes.len() as i32).collect());
    metadata.features = data.features.clone();
    let rows: Vec<Vec<f64>> = data.reference.rows.chunks(p).map(<[f64]>::to_vec).collect();
    let source = format!("{} reference rows of {}", rows.len(), data.name);
    let outputs = (source.clone(), data.reference.predicted.as_slice());
    let reference = DriftReference::from_rows(source, &rows, outputs, data.classes.len());
    (metadata, reference)
}

/// A tool's chunks before and from the documented drift, and its flags chunk by chunk.
fn write_chunks(out: &mut Output, data: &Data, tool: &str, symbols: &str) -> Result<()> {
    let flagged = |s: &str| s.chars().filter(|&c| c == 'A' || c == 'S').count() as u64;
    let (before, after) = symbols.split_at(data.drift_from.min(symbols.len()));
    for (scenario, part) in [
        ("before the documented drift", before),
        ("documented drift", after),
    ] {
        let mut row = Row::new(
            &data.name,
            tool,
            scenario,
            data.chunk,
            (flagged(part), part.len() as u64),
        );
        row.extra = Some(serde_json::json!({"chunks": symbols}));
        out.row(row)?;
    }
    Ok(())
}

/// Reads one data set's CSVs as the manifest describes them.
pub(super) fn load(manifest: &serde_json::Value, name: &str, drift_from: usize) -> Result<Data> {
    let entry = &manifest["datasets"][name];
    let strings = |key: &str| -> Vec<String> {
        (entry[key].as_array().into_iter().flatten())
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    let features = strings("features");
    let prediction = entry["prediction"]
        .as_str()
        .unwrap_or("prediction")
        .to_string();
    let probabilities = strings("prediction_proba");
    let csv = |part: &str| -> Result<std::path::PathBuf> {
        let path = entry["files"][part]["csv"].as_str();
        path.map(Into::into).ok_or_else(|| {
            Error::tool(
                "bench-drift",
                format!("the manifest has no {part} CSV of {name}"),
            )
        })
    };
    let (reference, analysis) = (read_csv(&csv("reference")?)?, read_csv(&csv("analysis")?)?);
    let mut classes: Vec<String> = reference.column(&prediction)?.to_vec();
    classes.sort();
    classes.dedup();
    let codes = Codes::new(&features, [&reference, &analysis]);
    let table = |raw: &RawTable| -> Result<Table> {
        Ok(Table {
            rows: codes.rows(&features, raw)?,
            predicted: predictions(raw, &prediction, &probabilities, &classes)?,
        })
    };
    Ok(Data {
        name: name.into(),
        reference: table(&reference)?,
        analysis: table(&analysis)?,
        features,
        classes,
        chunk: entry["docs_chunk_size"].as_u64().unwrap_or(5000) as usize,
        drift_from,
    })
}

/// A CSV's cells as text, by column.
pub(super) struct RawTable {
    columns: BTreeMap<String, Vec<String>>,
}

impl RawTable {
    pub(super) fn column(&self, name: &str) -> Result<&[String]> {
        (self.columns.get(name).map(Vec::as_slice))
            .ok_or_else(|| Error::tool("bench-drift", format!("no column {name:?}")))
    }
}

pub(super) fn read_csv(path: &Path) -> Result<RawTable> {
    let bad = |e: csv::Error| Error::tool("bench-drift", format!("{}: {e}", path.display()));
    let mut reader = csv::Reader::from_path(path).map_err(bad)?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(str::to_string)
        .collect();
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for record in reader.records() {
        for (column, cell) in columns.iter_mut().zip(record.map_err(bad)?.iter()) {
            column.push(cell.to_string());
        }
    }
    Ok(RawTable {
        columns: headers.into_iter().zip(columns).collect(),
    })
}

/// Each categorical feature's values, sorted: a value's code is its index.
struct Codes(BTreeMap<String, Vec<String>>);

impl Codes {
    fn new(features: &[String], tables: [&RawTable; 2]) -> Self {
        let mut codes = BTreeMap::new();
        for f in features {
            let cells = tables
                .iter()
                .flat_map(|t| t.columns.get(f).into_iter().flatten());
            let mut values: Vec<String> = cells
                .filter(|c| !c.is_empty() && c.parse::<f64>().is_err())
                .cloned()
                .collect();
            values.sort();
            values.dedup();
            if !values.is_empty() {
                codes.insert(f.clone(), values);
            }
        }
        Codes(codes)
    }

    fn rows(&self, features: &[String], raw: &RawTable) -> Result<Vec<f64>> {
        let columns: Vec<&[String]> = features
            .iter()
            .map(|f| raw.column(f))
            .collect::<Result<_>>()?;
        let n = columns.first().map_or(0, |c| c.len());
        let mut rows = Vec::with_capacity(n * features.len());
        for i in 0..n {
            for (f, column) in features.iter().zip(&columns) {
                let cell = &column[i];
                rows.push(match (cell.is_empty(), self.0.get(f)) {
                    (true, _) => f64::NAN,
                    (false, Some(values)) => {
                        values.binary_search(cell).map_or(f64::NAN, |k| k as f64)
                    }
                    (false, None) => cell.parse().unwrap_or(f64::NAN),
                });
            }
        }
        Ok(rows)
    }
}

/// The data set's model's predictions: its predicted class, and the probability of it.
fn predictions(
    raw: &RawTable,
    prediction: &str,
    probabilities: &[String],
    classes: &[String],
) -> Result<Vec<Predicted>> {
    let predicted = raw.column(prediction)?;
    let probabilities: Vec<&[String]> = probabilities
        .iter()
        .map(|c| raw.column(c))
        .collect::<Result<_>>()?;
    Ok((0..predicted.len())
        .map(|i| {
            let index = classes.binary_search(&predicted[i]).unwrap_or(0);
            let p = |c: usize| probabilities[c][i].parse::<f64>().unwrap_or(f64::NAN);
            let confidence = match probabilities.len() {
                1 if index == 1 => p(0),
                1 => 1.0 - p(0),
                k => (0..k).map(p).fold(0.0, f64::max),
            };
            Predicted::Class { index, confidence }
        })
        .collect())
}
