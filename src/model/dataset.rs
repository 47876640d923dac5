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
        let mut reader = csv::Reader::from_path(path)
            .map_err(|e| Error::Training(format!("{}: {e}", path.display())))?;
        let headers = reader
            .headers()
            .map_err(|e| Error::Training(format!("{}: {e}", path.display())))?
            .clone();
        let target_index = headers.iter().position(|h| h == target).ok_or_else(|| {
            Error::Training(format!(
                "{}: no column named {target:?} (columns: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let feature_names: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != target_index)
            .map(|(_, h)| h.to_string())
            .collect();
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for (line, record) in reader.records().enumerate() {
            let record = record.map_err(|e| Error::Training(format!("{}: {e}", path.display())))?;
            let row_number = line + 2; // 1-based, after the header
            let mut row = Vec::with_capacity(feature_names.len());
            for (i, cell) in record.iter().enumerate() {
                let cell = cell.trim();
                if i == target_index {
                    let label = parse(cell).ok_or_else(|| {
                        Error::Training(format!(
                            "{} row {row_number}: target {cell:?} is not {expected}",
                            path.display()
                        ))
                    })?;
                    labels.push(label);
                } else {
                    let value = cell.parse::<f64>().ok().filter(|v| v.is_finite());
                    let value = value.ok_or_else(|| {
                        Error::Training(format!(
                            "{} row {row_number}: column {:?} value {cell:?} is not a finite number",
                            path.display(),
                            &headers[i]
                        ))
                    })?;
                    row.push(value);
                }
            }
            rows.push(row);
        }
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
}
