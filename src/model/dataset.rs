//! Tabular training data: the bundled breast-cancer set and CSV files.

use std::path::Path;

use crate::error::{Error, Result};

/// Rows of numeric features with a target each: integer class labels by default, or what
/// [`Dataset::from_csv_with`] parses (a regressor's values, the index of a class name).
#[derive(Debug, Clone)]
pub struct Dataset<T = i32> {
    /// Feature names in column order (snake_case for the bundled set).
    pub feature_names: Vec<String>,
    /// One feature vector per row.
    pub rows: Vec<Vec<f64>>,
    /// The target of each row.
    pub labels: Vec<T>,
}

impl Dataset {
    /// Writes rows `rows` with a header, the target last (in column `target`).
    pub fn write_csv(&self, path: &Path, target: &str, rows: &[usize]) -> Result<()> {
        let failed = |e: csv::Error| Error::Training(format!("{}: {e}", path.display()));
        let mut writer = csv::Writer::from_path(path).map_err(failed)?;
        let header = self.feature_names.iter().map(String::as_str);
        writer
            .write_record(header.chain([target]))
            .map_err(failed)?;
        for &i in rows {
            let cells = self.rows[i].iter().map(f64::to_string);
            let label = self.labels[i].to_string();
            writer.write_record(cells.chain([label])).map_err(failed)?;
        }
        writer.flush().map_err(|e| Error::io(path, e))
    }

    /// The Wisconsin breast-cancer data shipped inside smartcore (569 rows, 30 features),
    /// with feature names in snake_case (`mean radius` becomes `mean_radius`).
    pub fn breast_cancer() -> Self {
        let raw = smartcore::dataset::breast_cancer::load_dataset();
        let feature_names = raw.feature_names.iter().map(|n| snake_case(n)).collect();
        let rows = raw
            .data
            .chunks(raw.num_features)
            .map(|row| row.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let labels = raw.target.iter().map(|&t| t as i32).collect();
        Dataset {
            feature_names,
            rows,
            labels,
        }
    }

    /// Reads a CSV file with a header row. `target` names the integer label column; every
    /// other column must be numeric and becomes a feature.
    pub fn from_csv(path: &Path, target: &str) -> Result<Self> {
        Self::from_csv_with(path, target, "an integer class label", |cell| {
            cell.parse().ok()
        })
    }
}

impl<T> Dataset<T> {
    /// [`Dataset::from_csv`] with the target column read by `parse` (`None`: the cell is not
    /// `expected`, which the error then names).
    pub fn from_csv_with(
        path: &Path,
        target: &str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Self> {
        let stream = CsvRows::open(path, target, expected, parse, Missing::Refused)?;
        let feature_names = stream.feature_names.clone();
        let (rows, labels): (Vec<Vec<f64>>, Vec<T>) =
            stream.collect::<Result<Vec<_>>>()?.into_iter().unzip();
        if rows.is_empty() {
            return Err(Error::Training(format!("{}: no data rows", path.display())));
        }
        Ok(Dataset {
            feature_names,
            rows,
            labels,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Whether a CSV's feature cells may be empty or `NaN` (read as NaN: a missing value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Every feature cell must be a finite number (training data).
    Refused,
    /// Empty and `NaN` cells are missing values (reference data of a model that takes them).
    Allowed,
}

/// A CSV file read row by row: each row's features (in column order, the target left out)
/// and its target, read by `parse`.
pub struct CsvRows<T, F> {
    path: std::path::PathBuf,
    reader: csv::Reader<std::fs::File>,
    headers: csv::StringRecord,
    target_index: usize,
    expected: String,
    parse: F,
    missing: Missing,
    line: usize,
    target: std::marker::PhantomData<fn() -> T>,
    /// Feature names in column order.
    pub feature_names: Vec<String>,
}

impl<T, F: Fn(&str) -> Option<T>> CsvRows<T, F> {
    /// Opens `path` and reads its header; `target` names the target column, read by `parse`
    /// (`None`: the cell is not `expected`, which the error then names).
    pub fn open(
        path: &Path,
        target: &str,
        expected: &str,
        parse: F,
        missing: Missing,
    ) -> Result<Self> {
        let failed = |e: csv::Error| Error::Training(format!("{}: {e}", path.display()));
        let mut reader = csv::Reader::from_path(path).map_err(failed)?;
        let headers = reader.headers().map_err(failed)?.clone();
        let target_index = headers.iter().position(|h| h == target).ok_or_else(|| {
            Error::Training(format!(
                "{}: no column named {target:?} (columns: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let feature_names = (headers.iter().enumerate())
            .filter(|(i, _)| *i != target_index)
            .map(|(_, h)| h.to_string())
            .collect();
        Ok(CsvRows {
            path: path.to_path_buf(),
            reader,
            headers,
            target_index,
            expected: expected.to_string(),
            parse,
            missing,
            line: 1,
            target: std::marker::PhantomData,
            feature_names,
        })
    }

    fn row(&self, record: &csv::StringRecord) -> Result<(Vec<f64>, T)> {
        let mut features = Vec::with_capacity(self.feature_names.len());
        let mut target = None;
        for (i, cell) in record.iter().enumerate() {
            let cell = cell.trim();
            if i == self.target_index {
                target = Some((self.parse)(cell).ok_or_else(|| {
                    Error::Training(format!(
                        "{} row {}: target {cell:?} is not {}",
                        self.path.display(),
                        self.line,
                        self.expected
                    ))
                })?);
                continue;
            }
            let missing = self.missing == Missing::Allowed
                && (cell.is_empty() || cell.eq_ignore_ascii_case("nan"));
            let value = match missing {
                true => Some(f64::NAN),
                false => cell.parse::<f64>().ok().filter(|v| v.is_finite()),
            };
            features.push(value.ok_or_else(|| {
                Error::Training(format!(
                    "{} row {}: column {:?} value {cell:?} is not a {}",
                    self.path.display(),
                    self.line,
                    &self.headers[i],
                    match self.missing {
                        Missing::Refused => "finite number",
                        Missing::Allowed => "finite number or missing (empty or NaN)",
                    }
                ))
            })?);
        }
        let target = target.ok_or_else(|| {
            Error::Training(format!(
                "{} row {}: no target",
                self.path.display(),
                self.line
            ))
        })?;
        Ok((features, target))
    }
}

impl<T, F: Fn(&str) -> Option<T>> Iterator for CsvRows<T, F> {
    type Item = Result<(Vec<f64>, T)>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut record = csv::StringRecord::new();
        self.line += 1; // 1-based, after the header
        match self.reader.read_record(&mut record) {
            Ok(false) => None,
            Ok(true) => Some(self.row(&record)),
            Err(e) => Some(Err(Error::Training(format!(
                "{}: {e}",
                self.path.display()
            )))),
        }
    }
}

/// `"mean concave points"` → `"mean_concave_points"`.
pub fn snake_case(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .map(|part| part.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_dataset_has_snake_case_names() {
        let data = Dataset::breast_cancer();
        assert_eq!(data.len(), 569);
        assert_eq!(data.feature_names.len(), 30);
        assert_eq!(data.feature_names[0], "mean_radius");
        assert_eq!(data.feature_names[27], "worst_concave_points");
        assert!(data.rows.iter().all(|r| r.len() == 30));
    }

    #[test]
    fn csv_reports_bad_cells_with_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.csv");
        std::fs::write(&path, "a,b,y\n1,2,0\n3,x,1\n").unwrap();
        let err = Dataset::from_csv(&path, "y").unwrap_err().to_string();
        assert!(err.contains("row 3") && err.contains("\"b\""), "{err}");
        let err = Dataset::from_csv(&path, "z").unwrap_err().to_string();
        assert!(err.contains("no column named \"z\""), "{err}");
    }

    #[test]
    fn a_reference_csv_streams_with_missing_cells_but_training_data_refuses_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        std::fs::write(&path, "a,b,y\n1,,0\nNaN,2,1\n3,4,1\n").unwrap();
        let parse = |c: &str| c.parse::<i32>().ok();
        let rows: Vec<(Vec<f64>, i32)> =
            CsvRows::open(&path, "y", "a label", parse, Missing::Allowed)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
        assert_eq!(rows.len(), 3);
        assert!(rows[0].0[1].is_nan() && rows[1].0[0].is_nan());
        assert_eq!((rows[2].0.clone(), rows[2].1), (vec![3.0, 4.0], 1));
        let err = Dataset::from_csv(&path, "y").unwrap_err().to_string();
        assert!(
            err.contains("row 2") && err.contains("\"b\"") && err.contains("finite number"),
            "{err}"
        );
    }
}
