//! Predictions awaiting their label, of one input partition, by record id.
//!
//! Kept in memory, or on disk with `--awaiting-dir` (`super::spill`), swept of what is older
//! than twice the horizon (so a label read again after a rewind still finds what it joined).
//! In memory, the store's size is reported as the bytes its entries take on the heap with
//! the hash table's own share, an estimate (docs/labels.md); on disk, as its files' size.

use hashbrown::HashMap;

use super::realized::Said;
use super::spill::{SpillDir, Spilled};
use crate::error::Result;

/// A prediction waiting for its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Awaited {
    /// The model version that made it (an index into the join's versions).
    pub version: u16,
    /// What it said.
    pub said: Said,
    /// The calibrated chance that it is right, when the version has a calibration.
    pub chance_right: Option<f32>,
    /// The input record's event time (ms).
    pub event_time: i64,
    /// When it was scored (ms, this instance's clock): what the sweep goes by.
    pub scored_at: i64,
    /// The offset of the label that joined it, if one did.
    pub joined_at: Option<i64>,
}

impl Awaited {
    /// Heap bytes of the entry with its key: the key, the value, the probabilities, and one
    /// control byte and an eighth of slack of the hash table.
    fn bytes(&self, id: &str) -> usize {
        let probabilities = match &self.said {
            Said::Class { probabilities, .. } => probabilities.len() * 4,
            Said::Value(_) => 0,
        };
        let slot = std::mem::size_of::<(Box<str>, Awaited)>() + 1;
        id.len() + probabilities + slot + slot / 8
    }
}

/// One input partition's awaiting predictions: in memory, or on disk (`super::spill`).
#[derive(Debug)]
pub struct Awaiting {
    kept: Kept,
    /// In memory: the entries' estimated bytes (on disk: 0, the files are measured).
    bytes: usize,
}

#[derive(Debug)]
enum Kept {
    Memory(HashMap<Box<str>, Awaited>),
    Disk(Spilled),
}

impl Default for Awaiting {
    fn default() -> Self {
        Awaiting {
            kept: Kept::Memory(HashMap::new()),
            bytes: 0,
        }
    }
}

impl Awaiting {
    /// An empty store of one partition in `dir`, or in memory without one.
    pub fn new(dir: Option<&SpillDir>) -> Result<Self> {
        Ok(match dir {
            Some(dir) => Awaiting {
                kept: Kept::Disk(Spilled::new(dir)?),
                bytes: 0,
            },
            None => Awaiting::default(),
        })
    }

    /// Keeps `awaited` for `id`. A record scored again (read again after a restart or a
    /// rewind) keeps the mark of the label that joined it.
    pub fn insert(&mut self, id: &str, mut awaited: Awaited) -> Result<()> {
        match &mut self.kept {
            Kept::Memory(entries) => {
                let added = awaited.bytes(id);
                match entries.get_mut(id) {
                    Some(old) => {
                        awaited.joined_at = old.joined_at;
                        self.bytes = self.bytes + added - old.bytes(id);
                        *old = awaited;
                    }
                    None => {
                        self.bytes += added;
                        entries.insert(id.into(), awaited);
                    }
                }
                Ok(())
            }
            Kept::Disk(spilled) => {
                let old = spilled.get(id)?;
                if let Some(old) = &old {
                    awaited.joined_at = old.joined_at;
                }
                spilled.put(id, &awaited, old.as_ref())
            }
        }
    }

    /// Whether a prediction for `id` waits.
    pub fn contains(&self, id: &str) -> Result<bool> {
        match &self.kept {
            Kept::Memory(entries) => Ok(entries.contains_key(id)),
            Kept::Disk(spilled) => Ok(spilled.get(id)?.is_some()),
        }
    }

    /// Applies `change` to the prediction for `id`, if one waits, and keeps what it made of
    /// it; its result.
    pub fn change<R>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut Awaited) -> R,
    ) -> Result<Option<R>> {
        match &mut self.kept {
            Kept::Memory(entries) => Ok(entries.get_mut(id).map(change)),
            Kept::Disk(spilled) => {
                let Some(old) = spilled.get(id)? else {
                    return Ok(None);
                };
                let mut awaited = old.clone();
                let result = change(&mut awaited);
                if awaited != old {
                    spilled.put(id, &awaited, Some(&old))?;
                }
                Ok(Some(result))
            }
        }
    }

    /// Forgets the predictions scored before `before` (ms); says how many.
    pub fn sweep(&mut self, before: i64) -> Result<usize> {
        let entries = match &mut self.kept {
            Kept::Memory(entries) => entries,
            Kept::Disk(spilled) => return spilled.sweep(before),
        };
        let n = entries.len();
        let mut freed = 0;
        entries.retain(|id, a| {
            let keep = a.scored_at >= before;
            if !keep {
                freed += a.bytes(id);
            }
            keep
        });
        self.bytes -= freed;
        Ok(n - entries.len())
    }

    /// Gives its disk space back (the partition was revoked).
    pub fn drop_all(self) -> Result<()> {
        match self.kept {
            Kept::Memory(_) => Ok(()),
            Kept::Disk(spilled) => spilled.drop_all(),
        }
    }

    /// How many predictions wait.
    pub fn len(&self) -> usize {
        match &self.kept {
            Kept::Memory(entries) => entries.len(),
            Kept::Disk(spilled) => spilled.len(),
        }
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Their estimated bytes in memory (0 on disk).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awaited(scored_at: i64) -> Awaited {
        Awaited {
            version: 0,
            said: Said::Class {
                label: 1,
                probabilities: vec![0.25, 0.75].into(),
            },
            chance_right: None,
            event_time: scored_at,
            scored_at,
            joined_at: None,
        }
    }

    #[test]
    fn a_record_scored_again_keeps_its_join_and_the_sweep_frees_its_bytes() {
        let mut store = Awaiting::default();
        store.insert("a", awaited(10)).unwrap();
        store.insert("b", awaited(20)).unwrap();
        let one = store.bytes() / 2;
        assert!(one > 14, "{one}");
        store.change("a", |a| a.joined_at = Some(7)).unwrap();
        store.insert("a", awaited(30)).unwrap();
        assert_eq!(store.change("a", |a| a.joined_at).unwrap(), Some(Some(7)));
        assert_eq!((store.len(), store.bytes()), (2, 2 * one));
        assert_eq!(store.sweep(25).unwrap(), 1, "b was scored before 25");
        assert_eq!((store.len(), store.bytes()), (1, one));
    }

    /// The same contract on disk: a record scored again keeps its join, the sweep goes by
    /// the time scored, and a partition's keyspaces go when it is dropped.
    #[test]
    fn on_disk_a_record_scored_again_keeps_its_join_and_the_sweep_goes_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillDir::open(&dir.path().join("awaiting")).unwrap();
        let mut store = Awaiting::new(Some(&spill)).unwrap();
        let mut other = Awaiting::new(Some(&spill)).unwrap();
        store.insert("a", awaited(10)).unwrap();
        store.insert("b", awaited(20)).unwrap();
        other.insert("a", awaited(5)).unwrap();
        assert_eq!(
            store.change("a", |a| a.joined_at = Some(7)).unwrap(),
            Some(())
        );
        assert_eq!(store.change("zz", |a| a.joined_at = Some(7)).unwrap(), None);
        store.insert("a", awaited(30)).unwrap();
        assert_eq!(store.change("a", |a| a.joined_at).unwrap(), Some(Some(7)));
        assert_eq!((store.len(), other.len()), (2, 1));
        assert_eq!(
            store.sweep(25).unwrap(),
            1,
            "b was scored before 25; a again at 30"
        );
        assert!(store.contains("a").unwrap() && !store.contains("b").unwrap());
        assert_eq!(other.change("a", |a| a.scored_at).unwrap(), Some(5));
        other.drop_all().unwrap();
        assert_eq!(store.len(), 1);
    }
}
