//! Predictions awaiting their label, of one input partition, by record id.
//!
//! Kept in memory, swept of what is older than twice the horizon (so a label read again
//! after a rewind still finds what it joined). The store's size is reported as the bytes its
//! entries take on the heap with the hash table's own share, an estimate (docs/labels.md).

use hashbrown::HashMap;

use super::realized::Said;

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

/// One input partition's awaiting predictions.
#[derive(Debug, Default)]
pub struct Awaiting {
    entries: HashMap<Box<str>, Awaited>,
    bytes: usize,
}

impl Awaiting {
    /// Keeps `awaited` for `id`. A record scored again (read again after a restart or a
    /// rewind) keeps the mark of the label that joined it.
    pub fn insert(&mut self, id: &str, mut awaited: Awaited) {
        let added = awaited.bytes(id);
        match self.entries.get_mut(id) {
            Some(old) => {
                awaited.joined_at = old.joined_at;
                self.bytes = self.bytes + added - old.bytes(id);
                *old = awaited;
            }
            None => {
                self.bytes += added;
                self.entries.insert(id.into(), awaited);
            }
        }
    }

    /// The prediction for `id`.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Awaited> {
        self.entries.get_mut(id)
    }

    /// Forgets the predictions scored before `before` (ms); says how many.
    pub fn sweep(&mut self, before: i64) -> usize {
        let n = self.entries.len();
        let mut freed = 0;
        self.entries.retain(|id, a| {
            let keep = a.scored_at >= before;
            if !keep {
                freed += a.bytes(id);
            }
            keep
        });
        self.bytes -= freed;
        n - self.entries.len()
    }

    /// How many predictions wait.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Their estimated bytes.
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
        store.insert("a", awaited(10));
        store.insert("b", awaited(20));
        let one = store.bytes() / 2;
        assert!(one > 14, "{one}");
        store.get_mut("a").unwrap().joined_at = Some(7);
        store.insert("a", awaited(30));
        assert_eq!(store.get_mut("a").unwrap().joined_at, Some(7));
        assert_eq!((store.len(), store.bytes()), (2, 2 * one));
        assert_eq!(store.sweep(25), 1, "b was scored before 25");
        assert_eq!((store.len(), store.bytes()), (1, one));
    }
}
