//! The model registry on disk: artifacts in `<root>/<name>/<version>/`, and per model a
//! pointer file, `<root>/<name>/serving.json`, naming the version that serves and the ones
//! that served before it (where `rollback` returns to).
//!
//! The pointer changes by writing a new file beside it and renaming it over the old one, so a
//! reader sees the old pointer or the new one, never part of one. A registry mounted from a
//! Kubernetes ConfigMap or volume changes the same way: the kubelet swaps a symlink.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::artifact::{METADATA_FILE, Model};
use super::evaluate::Evaluation;
use crate::error::{Error, RegistryError, Result, Unevaluated};

/// Name of the pointer file in a model's directory.
pub const POINTER_FILE: &str = "serving.json";

/// Which version of a model serves, and which served before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// The version that serves.
    pub version: String,
    /// Versions that served before, the most recent first: `rollback` returns to the first.
    #[serde(default)]
    pub previous: Vec<String>,
    /// When the pointer last changed (RFC 3339, UTC).
    pub changed_at: String,
}

/// What `promote` or `rollback` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The model.
    pub name: String,
    /// The version that served before, if any did.
    pub from: Option<String>,
    /// The version that serves now.
    pub to: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = self.from.as_deref().unwrap_or("(none)");
        write!(f, "{}: {from} -> {}", self.name, self.to)
    }
}

/// Whether an artifact may serve with the input it would read: the caller's check of its
/// features against the input schema (a decoder must map every feature).
pub type FeatureCheck<'a> = &'a dyn Fn(&Model) -> Result<()>;

/// A registry rooted at a directory.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// The registry at `root` (which need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Registry { root: root.into() }
    }

    /// Its root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `name`'s artifact `version`.
    pub fn artifact_dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join(name).join(version)
    }

    /// The pointer file of `name`.
    pub fn pointer_path(&self, name: &str) -> PathBuf {
        self.root.join(name).join(POINTER_FILE)
    }

    /// Names of the models: directories under the root with at least one version.
    pub fn names(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for name in subdirectories(&self.root)? {
            if !self.versions(&name)?.is_empty() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// `name`'s versions (directories holding `metadata.json`), numbers in numeric order
    /// first, then any others by name.
    pub fn versions(&self, name: &str) -> Result<Vec<String>> {
        let dir = self.root.join(name);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut versions: Vec<String> = subdirectories(&dir)?
            .into_iter()
            .filter(|v| dir.join(v).join(METADATA_FILE).is_file())
            .collect();
        versions.sort_by_key(|v| (v.parse::<u64>().map_or(u64::MAX, |n| n), v.clone()));
        Ok(versions)
    }

    /// The version after `name`'s highest numbered one (`1` for a new model).
    pub fn next_version(&self, name: &str) -> Result<String> {
        let highest = self
            .versions(name)?
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .max();
        Ok(highest.map_or(1, |n| n + 1).to_string())
    }

    /// `name`'s pointer, or `None` when no version was ever promoted.
    pub fn pointer(&self, name: &str) -> Result<Option<Pointer>> {
        let path = self.pointer_path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::from(RegistryError::BadPointer {
                path: path.clone(),
                message: e.to_string(),
            })
        })
    }

    /// Loads `name`'s artifact `version` and checks that it may serve: its checksum, its
    /// model against its metadata, its baselines ([`Model::load`]), and `features` (its
    /// features against the input schema).
    pub fn verify(&self, name: &str, version: &str, features: FeatureCheck<'_>) -> Result<Model> {
        let dir = self.artifact_dir(name, version);
        if !dir.join(METADATA_FILE).is_file() {
            return Err(RegistryError::NoSuchVersion {
                name: name.to_string(),
                version: version.to_string(),
                root: self.root.clone(),
                versions: self.versions(name)?.join(", "),
            }
            .into());
        }
        let model = Model::load(&dir)?;
        if (
            model.metadata.name.as_str(),
            model.metadata.version.as_str(),
        ) != (name, version)
        {
            return Err(Error::Model {
                path: dir,
                message: format!(
                    "its metadata names it {} version {}",
                    model.metadata.name, model.metadata.version
                ),
            });
        }
        features(&model)?;
        Ok(model)
    }

    /// Makes `version` serve `name`, after verifying it; the version it replaces becomes
    /// the first to roll back to.
    pub fn promote(&self, name: &str, version: &str, features: FeatureCheck<'_>) -> Result<Change> {
        self.verify(name, version, features)?;
        let old = self.pointer(name)?;
        let from = old.as_ref().map(|p| p.version.clone());
        let mut previous = Vec::new();
        if let Some(old) = old.filter(|p| p.version != version) {
            previous.push(old.version);
            previous.extend(old.previous);
        }
        self.write_pointer(name, version, previous)?;
        Ok(Change {
            name: name.into(),
            from,
            to: version.into(),
        })
    }

    /// Promotes `version` when it is the first of `name` to be promoted (what `train` and
    /// `import` do), so that a new model serves without a further step; later versions wait
    /// for `driftwood models promote`.
    pub fn promote_first(&self, name: &str, version: &str) -> Result<Option<Change>> {
        if self.pointer(name)?.is_some() {
            return Ok(None);
        }
        // Its features meet the input schema when an instance loads it, which checks them.
        self.promote(name, version, &|_| Ok(())).map(Some)
    }

    /// Makes the version that served before the current one serve `name` again, after
    /// verifying it.
    pub fn rollback(&self, name: &str, features: FeatureCheck<'_>) -> Result<Change> {
        self.rollback_from(name, None, features)
    }

    /// [`Registry::rollback`], only while `from` (when given) still serves: an instance
    /// rolling back by itself must not undo another's rollback.
    pub fn rollback_from(
        &self,
        name: &str,
        from: Option<&str>,
        features: FeatureCheck<'_>,
    ) -> Result<Change> {
        let pointer = self
            .pointer(name)?
            .ok_or_else(|| Error::from(RegistryError::NotServing(name.to_string())))?;
        if let Some(from) = from.filter(|&v| v != pointer.version) {
            return Err(RegistryError::NoLongerServes {
                name: name.to_string(),
                from: from.to_string(),
                serving: pointer.version,
            }
            .into());
        }
        let Some((back_to, earlier)) = pointer.previous.split_first() else {
            return Err(RegistryError::NothingToRollBackTo {
                name: name.to_string(),
                version: pointer.version,
            }
            .into());
        };
        self.verify(name, back_to, features)?;
        self.write_pointer(name, back_to, earlier.to_vec())?;
        Ok(Change {
            name: name.into(),
            from: Some(pointer.version),
            to: back_to.clone(),
        })
    }

    /// Where the evaluation of `name`'s version `candidate` is kept (beside the versions,
    /// in a directory that holds no `metadata.json` and so is no version).
    pub fn evaluation_path(&self, name: &str, candidate: &str) -> PathBuf {
        self.root
            .join(name)
            .join("evaluations")
            .join(format!("{candidate}.json"))
    }

    /// Keeps `evaluation` (replacing an earlier one of the same candidate); its path.
    pub fn keep_evaluation(&self, evaluation: &Evaluation) -> Result<PathBuf> {
        let path = self.evaluation_path(&evaluation.name, &evaluation.candidate.version);
        let dir = path.parent().expect("a directory");
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let text = serde_json::to_string_pretty(evaluation).expect("an evaluation serializes");
        write_atomically(&path, &(text + "\n"))?;
        Ok(path)
    }

    /// The evaluation kept for `name`'s version `candidate`, if any.
    pub fn evaluation(&self, name: &str, candidate: &str) -> Result<Option<Evaluation>> {
        read_if_there(&self.evaluation_path(name, candidate), "an evaluation")
    }

    /// [`Registry::promote`], only when `version` passed an evaluation against the version
    /// serving now, both artifacts unchanged since (`--require-evaluation`).
    pub fn promote_evaluated(
        &self,
        name: &str,
        version: &str,
        features: FeatureCheck<'_>,
    ) -> Result<Change> {
        self.check_evaluated(name, version)?;
        self.promote(name, version, features)
    }

    /// Whether `version` passed an evaluation against the version serving now, both
    /// artifacts unchanged since; the reason it did not, if not.
    pub fn check_evaluated(&self, name: &str, version: &str) -> Result<()> {
        let refused = |why| RegistryError::NotEvaluated {
            name: name.into(),
            version: version.into(),
            why,
        };
        let evaluation = self
            .evaluation(name, version)?
            .ok_or(refused(Unevaluated::Never))?;
        let serving = self.pointer(name)?.map(|p| p.version);
        if serving.as_deref() != Some(evaluation.baseline.version.as_str()) {
            return Err(refused(Unevaluated::AgainstAnother {
                evaluated_against: evaluation.baseline.version,
                serving: serving.unwrap_or_else(|| "none".into()),
            })
            .into());
        }
        for side in [&evaluation.candidate, &evaluation.baseline] {
            let model = self.verify(name, &side.version, &|_| Ok(()))?;
            if model.metadata.model_sha256 != side.model_sha256 {
                return Err(refused(Unevaluated::ArtifactChanged(side.version.clone())).into());
            }
        }
        match evaluation.verdict.passed {
            true => Ok(()),
            false => Err(refused(Unevaluated::Failed(evaluation.verdict.reason)).into()),
        }
    }

    /// Writes the pointer beside the old one and renames it over it.
    fn write_pointer(&self, name: &str, version: &str, previous: Vec<String>) -> Result<()> {
        let pointer = Pointer {
            version: version.into(),
            previous,
            changed_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        };
        let text = serde_json::to_string_pretty(&pointer).expect("a pointer serializes");
        write_atomically(&self.pointer_path(name), &(text + "\n"))
    }
}

/// The JSON file at `path` read as `what`, or `None` when there is none.
pub(super) fn read_if_there<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<Option<T>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Model {
                path: path.to_owned(),
                message: format!("not {what}: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes `text` beside `path` and renames it over it.
pub(super) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&temporary, text).map_err(|e| Error::io(&temporary, e))?;
    std::fs::rename(&temporary, path).map_err(|e| Error::io(path, e))
}

/// Names of the directories in `dir` (following symlinks), hidden ones left out (a
/// ConfigMap mount keeps its data in `..data`).
fn subdirectories(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

mod rollouts;
#[cfg(test)]
mod tests;
