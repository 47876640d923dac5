//! Writer schemas by id, as the registry gave them: shared by the loop that fetches them and
//! every decoder that compiles a plan from them. Bounded: past the bound the oldest entry
//! goes, to be fetched again if its id comes back.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use apache_avro::Schema;

/// What is known of one schema id.
#[derive(Debug, Clone)]
pub enum WriterSchema {
    /// The registry's schema for the id.
    Known(Arc<Schema>),
    /// Records with this id cannot be decoded, for the reason given: the registry does not
    /// know the id, or its schema is not Avro or does not parse.
    Unusable(String),
}

#[derive(Debug, Default)]
struct Inner {
    by_id: HashMap<u32, WriterSchema>,
    order: VecDeque<u32>,
}

/// The shared, bounded map from schema id to writer schema.
#[derive(Debug, Clone)]
pub struct WriterSchemas {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

impl WriterSchemas {
    /// An empty map keeping at most `capacity` ids (at least one).
    pub fn new(capacity: usize) -> Self {
        WriterSchemas {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    /// What is known of `id`, if anything.
    pub fn get(&self, id: u32) -> Option<WriterSchema> {
        self.lock().by_id.get(&id).cloned()
    }

    /// Whether anything is known of `id`.
    pub fn contains(&self, id: u32) -> bool {
        self.lock().by_id.contains_key(&id)
    }

    /// Records what the registry said of `id`, evicting the oldest id when full.
    pub fn insert(&self, id: u32, schema: WriterSchema) {
        let mut inner = self.lock();
        if inner.by_id.insert(id, schema).is_none() {
            inner.order.push_back(id);
            while inner.order.len() > self.capacity {
                if let Some(old) = inner.order.pop_front() {
                    inner.by_id.remove(&old);
                }
            }
        }
    }

    /// How many ids are known.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no id is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Held for a map operation only; a panic elsewhere cannot leave it half-updated.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unusable(n: u32) -> WriterSchema {
        WriterSchema::Unusable(format!("{n}"))
    }

    #[test]
    fn the_oldest_id_goes_past_the_bound() {
        let schemas = WriterSchemas::new(2);
        schemas.insert(1, unusable(1));
        schemas.insert(2, unusable(2));
        schemas.insert(2, unusable(22));
        schemas.insert(3, unusable(3));
        assert_eq!(schemas.len(), 2);
        assert!(schemas.get(1).is_none());
        assert!(matches!(schemas.get(2), Some(WriterSchema::Unusable(m)) if m == "22"));
        assert!(schemas.get(3).is_some());
    }
}
