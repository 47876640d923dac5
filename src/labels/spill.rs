//! Awaiting predictions on disk, for horizons whose predictions do not fit in memory: fjall
//! (a pure-Rust LSM tree, chosen by measurement, docs/labels.md), one database per instance,
//! two keyspaces per input partition: the predictions by id, and their ids by the time they
//! were scored (what the sweep reads in order).
//!
//! Hidden contract: the directory holds nothing that must survive. It is emptied when the
//! join opens it; a partition's state is read back from the topics on assignment, as in
//! memory, and a revoked partition's keyspaces are dropped. Nothing is synced (fjall's
//! journal is written, not fsynced): a crash loses only what the topics give back.

use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use super::awaiting::Awaited;
use super::realized::Said;
use crate::error::{Error, Result};

/// The database the awaiting predictions of every partition live in.
#[derive(Clone)]
pub struct SpillDir {
    path: PathBuf,
    db: Database,
}

impl std::fmt::Debug for SpillDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillDir")
            .field("path", &self.path)
            .finish()
    }
}

fn failed(path: &Path, source: fjall::Error) -> Error {
    Error::Store {
        path: path.to_owned(),
        message: source.to_string(),
    }
}

impl SpillDir {
    /// Empties `path` (creating it) and opens a database there.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(io)?;
        }
        std::fs::create_dir_all(path).map_err(io)?;
        let db = Database::builder(path)
            .open()
            .map_err(|e| failed(path, e))?;
        Ok(SpillDir {
            path: path.to_owned(),
            db,
        })
    }

    /// The bytes its files take on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }
}

/// One input partition's awaiting predictions on disk.
pub struct Spilled {
    dir: SpillDir,
    by_id: Keyspace,
    by_time: Keyspace,
    len: usize,
}

impl std::fmt::Debug for Spilled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spilled").field("len", &self.len).finish()
    }
}

/// Keyspaces are named by a number never used before in this database, so a partition
/// assigned again does not meet its dropped keyspaces.
static GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Spilled {
    /// A new, empty store of one partition in `dir`.
    pub fn new(dir: &SpillDir) -> Result<Self> {
        let n = GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let open = |name: String| {
            (dir.db)
                .keyspace(&name, KeyspaceCreateOptions::default)
                .map_err(|e| failed(&dir.path, e))
        };
        Ok(Spilled {
            dir: dir.clone(),
            by_id: open(format!("id{n}"))?,
            by_time: open(format!("time{n}"))?,
            len: 0,
        })
    }

    fn failed(&self, e: fjall::Error) -> Error {
        failed(&self.dir.path, e)
    }

    /// The prediction for `id`.
    pub fn get(&self, id: &str) -> Result<Option<Awaited>> {
        let value = self.by_id.get(id).map_err(|e| self.failed(e))?;
        Ok(value.and_then(|v| decode(&v)))
    }

    /// Keeps `awaited` for `id`, in place of `old` (what [`Spilled::get`] gave).
    pub fn put(&mut self, id: &str, awaited: &Awaited, old: Option<&Awaited>) -> Result<()> {
        let mut batch = self.dir.db.batch();
        match old {
            Some(old) if old.scored_at != awaited.scored_at => {
                batch.remove(&self.by_time, time_key(old.scored_at, id));
            }
            Some(_) => {}
            None => self.len += 1,
        }
        batch.insert(&self.by_time, time_key(awaited.scored_at, id), []);
        batch.insert(&self.by_id, id, encode(awaited));
        batch.commit().map_err(|e| self.failed(e))
    }

    /// Forgets the predictions scored before `before` (ms); says how many.
    pub fn sweep(&mut self, before: i64) -> Result<usize> {
        let end = time_key(before, "");
        let mut batch = self.dir.db.batch();
        let mut removed = 0;
        for entry in self.by_time.range(..end) {
            let key = entry.key().map_err(|e| self.failed(e))?;
            batch.remove(&self.by_id, &key[8..]);
            batch.remove(&self.by_time, key);
            removed += 1;
        }
        batch.commit().map_err(|e| self.failed(e))?;
        self.len -= removed;
        Ok(removed)
    }

    /// How many predictions wait.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops its keyspaces (the partition was revoked).
    pub fn drop_all(self) -> Result<()> {
        let (db, path) = (&self.dir.db, &self.dir.path);
        db.delete_keyspace(self.by_id)
            .map_err(|e| failed(path, e))?;
        db.delete_keyspace(self.by_time)
            .map_err(|e| failed(path, e))
    }
}

/// The scored time, ordered as bytes (sign bit flipped, big-endian), then the id.
fn time_key(scored_at: i64, id: &str) -> Vec<u8> {
    let mut key = ((scored_at as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

const CHANCE: u8 = 1;
const JOINED: u8 = 2;
const VALUE: u8 = 4;

/// An awaited prediction as bytes: version, flags, the times, then what is present.
fn encode(a: &Awaited) -> Vec<u8> {
    let mut flags = 0;
    flags |= if a.chance_right.is_some() { CHANCE } else { 0 };
    flags |= if a.joined_at.is_some() { JOINED } else { 0 };
    flags |= if matches!(a.said, Said::Value(_)) {
        VALUE
    } else {
        0
    };
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(&a.version.to_le_bytes());
    out.push(flags);
    out.extend_from_slice(&a.event_time.to_le_bytes());
    out.extend_from_slice(&a.scored_at.to_le_bytes());
    if let Some(c) = a.chance_right {
        out.extend_from_slice(&c.to_le_bytes());
    }
    if let Some(j) = a.joined_at {
        out.extend_from_slice(&j.to_le_bytes());
    }
    match &a.said {
        Said::Value(v) => out.extend_from_slice(&v.to_le_bytes()),
        Said::Class {
            label,
            probabilities,
        } => {
            out.extend_from_slice(&label.to_le_bytes());
            for p in probabilities.iter() {
                out.extend_from_slice(&p.to_le_bytes());
            }
        }
    }
    out
}

/// What [`encode`] wrote; `None` for bytes it did not write.
fn decode(bytes: &[u8]) -> Option<Awaited> {
    let mut at = 0;
    let mut take = |n: usize| {
        let slice = bytes.get(at..at + n)?;
        at += n;
        Some(slice)
    };
    let version = u16::from_le_bytes(take(2)?.try_into().ok()?);
    let flags = take(1)?[0];
    let i64_at = |s: &[u8]| s.try_into().ok().map(i64::from_le_bytes);
    let event_time = i64_at(take(8)?)?;
    let scored_at = i64_at(take(8)?)?;
    let chance_right = match flags & CHANCE {
        0 => None,
        _ => Some(f32::from_le_bytes(take(4)?.try_into().ok()?)),
    };
    let joined_at = match flags & JOINED {
        0 => None,
        _ => Some(i64_at(take(8)?)?),
    };
    let said = match flags & VALUE {
        0 => {
            let label = i32::from_le_bytes(take(4)?.try_into().ok()?);
            let rest = &bytes[at..];
            let probabilities = (rest.chunks_exact(4))
                .map(|c| f32::from_le_bytes(c.try_into().expect("four bytes")))
                .collect();
            Said::Class {
                label,
                probabilities,
            }
        }
        _ => Said::Value(f64::from_le_bytes(take(8)?.try_into().ok()?)),
    };
    Some(Awaited {
        version,
        said,
        chance_right,
        event_time,
        scored_at,
        joined_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_awaited_prediction_reads_back_as_written() {
        let class = Awaited {
            version: 3,
            said: Said::Class {
                label: -1,
                probabilities: vec![0.25, 0.75].into(),
            },
            chance_right: Some(0.7),
            event_time: -5,
            scored_at: 1_700_000_000_000,
            joined_at: Some(42),
        };
        assert_eq!(decode(&encode(&class)), Some(class));
        let value = Awaited {
            version: 0,
            said: Said::Value(2.5),
            chance_right: None,
            event_time: 1,
            scored_at: 2,
            joined_at: None,
        };
        assert_eq!(decode(&encode(&value)), Some(value));
        assert_eq!(decode(&[1, 2]), None);
    }

    #[test]
    fn times_order_as_bytes() {
        assert!(time_key(-1, "z") < time_key(0, "a"));
        assert!(time_key(5, "b") < time_key(6, ""));
    }
}
