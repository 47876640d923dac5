//! Models from MLflow's Model Registry: a version named by `models:/NAME/VERSION` or
//! `models:/NAME@ALIAS`, resolved through the tracking server's REST API and downloaded
//! (`model.onnx` and `reference.csv` among the version's artifacts), to be checked and
//! written into driftwood's registry as `import` does (`tools::models`).
//!
//! The REST calls: `GET /api/2.0/mlflow/registered-models/alias` (an alias's version),
//! `GET /api/2.0/mlflow/model-versions/get-download-uri` (where its artifacts are), and the
//! files from the server's artifact proxy (`/api/2.0/mlflow-artifacts/artifacts/…`, for an
//! `mlflow-artifacts:` location) or from the file system (a `file:` location or a path).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::blocking::Client;
use serde::Deserialize;

use crate::error::{Error, Result};

/// The model file a version's artifacts must hold.
pub const MODEL_FILE: &str = "model.onnx";
/// The reference rows (features and the target column) a version's artifacts must hold.
pub const REFERENCE_FILE: &str = "reference.csv";

/// A model version named in MLflow's registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelUri {
    pub name: String,
    pub version: VersionRef,
}

/// A version by number, or by alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionRef {
    Number(String),
    Alias(String),
}

impl std::fmt::Display for ModelUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            VersionRef::Number(v) => write!(f, "models:/{}/{v}", self.name),
            VersionRef::Alias(a) => write!(f, "models:/{}@{a}", self.name),
        }
    }
}

/// Reads `models:/NAME/VERSION` or `models:/NAME@ALIAS`.
pub fn parse(uri: &str) -> Result<ModelUri> {
    let bad = || {
        Error::Config(format!(
            "{uri:?} is not an MLflow model URI: write models:/NAME/VERSION or models:/NAME@ALIAS"
        ))
    };
    let rest = uri.strip_prefix("models:/").ok_or_else(bad)?;
    let (name, version) = match (rest.split_once('@'), rest.rsplit_once('/')) {
        (Some((name, alias)), _) => (name, VersionRef::Alias(alias.to_owned())),
        (None, Some((name, number))) => (name, VersionRef::Number(number.to_owned())),
        (None, None) => return Err(bad()),
    };
    let empty = |s: &str| s.is_empty() || s.contains('/');
    match &version {
        VersionRef::Alias(v) | VersionRef::Number(v) if empty(name) || empty(v) => Err(bad()),
        _ => Ok(ModelUri {
            name: name.to_owned(),
            version,
        }),
    }
}

/// A tracking server.
pub struct Mlflow {
    base: String,
    http: Client,
}

/// A version found: its number and where its artifacts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub version: String,
    pub artifact_uri: String,
}

#[derive(Deserialize)]
struct AliasAnswer {
    model_version: VersionAnswer,
}

#[derive(Deserialize)]
struct VersionAnswer {
    version: String,
}

#[derive(Deserialize)]
struct DownloadAnswer {
    artifact_uri: String,
}

impl Mlflow {
    /// The tracking server at `url` (e.g. `http://mlflow:5000`).
    pub fn new(url: &str) -> Result<Self> {
        let http = Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| failed(url, e.to_string()))?;
        Ok(Mlflow {
            base: url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    fn get<T: serde::de::DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T> {
        let url = format!("{}{path}", self.base);
        let with_query = reqwest::Url::parse_with_params(&url, query)
            .map_err(|e| failed(&url, e.to_string()))?;
        let answer = (self.http.get(with_query).send()).map_err(|e| failed(&url, e.to_string()))?;
        let status = answer.status();
        let body = answer.text().map_err(|e| failed(&url, e.to_string()))?;
        if !status.is_success() {
            return Err(failed(&url, format!("{status}: {body}")));
        }
        serde_json::from_str(&body).map_err(|e| failed(&url, format!("{e}: {body}")))
    }

    /// The version `uri` names now (an alias read as of now), and where its artifacts are.
    pub fn find(&self, uri: &ModelUri) -> Result<Found> {
        let name = uri.name.as_str();
        let version = match &uri.version {
            VersionRef::Number(v) => v.clone(),
            VersionRef::Alias(alias) => {
                let query = [("name", name), ("alias", alias.as_str())];
                let answer: AliasAnswer =
                    self.get("/api/2.0/mlflow/registered-models/alias", &query)?;
                answer.model_version.version
            }
        };
        let query = [("name", name), ("version", version.as_str())];
        let answer: DownloadAnswer =
            self.get("/api/2.0/mlflow/model-versions/get-download-uri", &query)?;
        Ok(Found {
            name: name.to_owned(),
            version,
            artifact_uri: answer.artifact_uri,
        })
    }

    /// Downloads the artifact `file` of `found` into `dir`; its path.
    pub fn download(&self, found: &Found, file: &str, dir: &Path) -> Result<PathBuf> {
        let to = dir.join(file);
        let location = found.artifact_uri.trim_end_matches('/');
        if let Some(path) = location.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/PATH` or `mlflow-artifacts://HOST:PORT/PATH`: the path after
            // any authority, served by this server's proxy.
            let path = match path.strip_prefix("//") {
                Some(rest) => rest.split_once('/').map_or("", |(_, p)| p),
                None => path.trim_start_matches('/'),
            };
            let url = format!(
                "{}/api/2.0/mlflow-artifacts/artifacts/{path}/{file}",
                self.base
            );
            let answer = self
                .http
                .get(&url)
                .send()
                .map_err(|e| failed(&url, e.to_string()))?;
            if !answer.status().is_success() {
                return Err(failed(&url, answer.status().to_string()));
            }
            let bytes = answer.bytes().map_err(|e| failed(&url, e.to_string()))?;
            std::fs::write(&to, &bytes).map_err(|e| Error::io(&to, e))?;
            return Ok(to);
        }
        let local = location.strip_prefix("file://").unwrap_or(location);
        if !local.starts_with('/') {
            return Err(failed(
                &found.artifact_uri,
                "artifacts neither behind the server's proxy (mlflow-artifacts:) nor on this file system".into(),
            ));
        }
        let from = Path::new(local).join(file);
        std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
        Ok(to)
    }
}

fn failed(url: &str, message: String) -> Error {
    Error::Tool {
        tool: "mlflow",
        message: format!("{url}: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_name_a_version_by_number_or_alias() {
        let by = |name: &str, version| ModelUri {
            name: name.into(),
            version,
        };
        assert_eq!(
            parse("models:/fraud/3").unwrap(),
            by("fraud", VersionRef::Number("3".into()))
        );
        let champion = parse("models:/fraud@champion").unwrap();
        assert_eq!(champion, by("fraud", VersionRef::Alias("champion".into())));
        assert_eq!(champion.to_string(), "models:/fraud@champion");
        for bad in [
            "runs:/abc/model",
            "models:/fraud",
            "models:/@x",
            "models:/a/b/c",
            "models:/a/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
