//! Which input offsets may be committed. An offset is committable once its output and every
//! earlier offset's output of the same partition have been acknowledged; outputs of one
//! input partition may be acknowledged out of order (they go to several output partitions).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

/// Partition progress, created by the pipeline and handed to the two places that move it: the
/// consumer's callbacks (assign, revoke, commit) and the producer's (acknowledgements). Both
/// run inside the pipeline thread's polls, so the lock is never contended. The input topic
/// and the labels topic (`--labels-topic`) are tracked apart: their partitions share numbers.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    input: Arc<Mutex<OffsetTracker>>,
    labels: Arc<Mutex<OffsetTracker>>,
}

/// Which of the consumed topics a partition number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The features to score.
    Input,
    /// Their labels, arriving later (`--labels-topic`).
    Labels,
}

/// The consumed topics' names.
#[derive(Debug, Clone)]
pub struct Topics {
    /// The input topic.
    pub input: String,
    /// The labels topic, when labels come on a topic of their own.
    pub labels: Option<String>,
}

impl Topics {
    /// Each consumed topic with its stream.
    pub fn streams(&self) -> impl Iterator<Item = (Stream, &str)> {
        let labels = self.labels.as_deref().map(|t| (Stream::Labels, t));
        std::iter::once((Stream::Input, self.input.as_str())).chain(labels)
    }

    /// The topic of `stream` (none for labels without a labels topic).
    pub fn name(&self, stream: Stream) -> Option<&str> {
        match stream {
            Stream::Input => Some(&self.input),
            Stream::Labels => self.labels.as_deref(),
        }
    }
}

impl Progress {
    /// The tracker of `stream`'s partitions.
    pub fn of(&self, stream: Stream) -> MutexGuard<'_, OffsetTracker> {
        match stream {
            Stream::Input => self.lock(),
            Stream::Labels => self.labels(),
        }
    }

    /// The input topic's tracker; hold the guard briefly, never across a Kafka poll.
    pub fn lock(&self) -> MutexGuard<'_, OffsetTracker> {
        self.input.lock().expect("offset tracker")
    }

    /// The labels topic's tracker (empty without `--labels-topic`).
    pub fn labels(&self) -> MutexGuard<'_, OffsetTracker> {
        self.labels.lock().expect("labels offset tracker")
    }
}

/// One assignment of a partition to this consumer. An output sent under an earlier
/// assignment of the same partition (revoked and assigned again since) must not count for
/// the later one: its record is read again, and acknowledging the old copy would let a
/// commit pass the new one while it is still unacknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(u64);

/// Per-partition bookkeeping of records sent but not yet acknowledged.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<i32, PartitionState>,
    leases_granted: u64,
}

#[derive(Debug)]
struct PartitionState {
    lease: Lease,
    /// The lease it was assigned under, kept when an abort rewinds it (which grants a new
    /// `lease`): what was learnt of the partition since its assignment stays true.
    assigned_as: Lease,
    /// Offsets sent and not yet acknowledged.
    in_flight: InFlight,
    /// One past the highest offset sent.
    next: Option<i64>,
    /// The last offset handed to the consumer for committing.
    stored: Option<i64>,
    /// Exactly-once: where reading starts again if the open transaction aborts (the position
    /// its last transaction committed, else the first offset sent under this lease).
    rewind_to: Option<i64>,
    /// No commit reaches past this offset: the first record of a labels window not yet
    /// published, whose records are read again if the window is lost.
    hold: Option<i64>,
}

impl PartitionState {
    /// Nothing sent yet under `lease`; an abort reads again from `start`, when known.
    fn new(lease: Lease, start: Option<i64>) -> Self {
        PartitionState {
            lease,
            assigned_as: lease,
            in_flight: InFlight::default(),
            next: start,
            stored: None,
            rewind_to: start,
            hold: None,
        }
    }

    /// The committable position: the lowest unacknowledged offset, or one past the highest
    /// sent, and never past the hold.
    fn position(&self) -> Option<i64> {
        let position = self.in_flight.first().or(self.next)?;
        Some(self.hold.map_or(position, |h| h.min(position)))
    }
}

/// A partition's offsets sent and not yet acknowledged: a set, kept as the offsets in the
/// order sent (ascending, as a partition is read) with a mark for those acknowledged, which
/// leave once every earlier one has. Sending and acknowledging are then a push and a binary
/// search instead of a tree's insert and remove (which cost the loop 4% of its time).
#[derive(Debug, Default)]
struct InFlight {
    /// Ascending; the front is never acknowledged.
    offsets: VecDeque<(i64, bool)>,
    /// Of `offsets`, those not acknowledged.
    pending: usize,
}

impl InFlight {
    fn insert(&mut self, offset: i64) {
        match self.offsets.back() {
            Some(&(last, _)) if last >= offset => match self.find(offset) {
                Ok(i) if self.offsets[i].1 => {
                    self.offsets[i].1 = false;
                    self.pending += 1;
                }
                Ok(_) => {}
                Err(i) => {
                    self.offsets.insert(i, (offset, false));
                    self.pending += 1;
                }
            },
            _ => {
                self.offsets.push_back((offset, false));
                self.pending += 1;
            }
        }
    }

    fn remove(&mut self, offset: i64) {
        if let Ok(i) = self.find(offset)
            && !self.offsets[i].1
        {
            self.offsets[i].1 = true;
            self.pending -= 1;
            while self.offsets.front().is_some_and(|o| o.1) {
                self.offsets.pop_front();
            }
        }
    }

    /// Where `offset` is, or would go. Offsets sent are mostly consecutive (a partition's
    /// records, less the odd transaction marker), so the first guess is its distance from
    /// the front; a binary search where that misses (it cost the loop 3% of its time).
    fn find(&self, offset: i64) -> Result<usize, usize> {
        let guess = (self.offsets.front())
            .and_then(|&(first, _)| usize::try_from(offset.checked_sub(first)?).ok());
        if let Some(i) = guess
            && self.offsets.get(i).is_some_and(|o| o.0 == offset)
        {
            return Ok(i);
        }
        self.offsets.binary_search_by_key(&offset, |o| o.0)
    }

    fn first(&self) -> Option<i64> {
        self.offsets.front().map(|o| o.0)
    }

    fn len(&self) -> usize {
        self.pending
    }
}

impl OffsetTracker {
    /// Starts tracking freshly assigned partitions (forgetting any earlier state for them).
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            let state = PartitionState::new(self.grant_lease(), None);
            self.partitions.insert(p, state);
        }
    }

    fn grant_lease(&mut self) -> Lease {
        self.leases_granted += 1;
        Lease(self.leases_granted)
    }

    /// Stops tracking revoked partitions.
    pub fn revoke(&mut self, partitions: impl IntoIterator<Item = i32>) {
        for p in partitions {
            self.partitions.remove(&p);
        }
    }

    /// The tracked (assigned) partitions.
    pub fn assigned(&self) -> impl Iterator<Item = i32> + '_ {
        self.partitions.keys().copied()
    }

    /// Whether the partition is tracked (assigned).
    pub fn is_assigned(&self, partition: i32) -> bool {
        self.partitions.contains_key(&partition)
    }

    /// The partition's current lease, if it is assigned.
    pub fn lease(&self, partition: i32) -> Option<Lease> {
        self.partitions.get(&partition).map(|s| s.lease)
    }

    /// The lease the partition was assigned under (unchanged by rewinds), if it is assigned.
    pub fn assignment(&self, partition: i32) -> Option<Lease> {
        self.partitions.get(&partition).map(|s| s.assigned_as)
    }

    /// Whether `lease` is the partition's current assignment.
    pub fn holds(&self, partition: i32, lease: Lease) -> bool {
        self.partitions
            .get(&partition)
            .is_some_and(|s| s.lease == lease)
    }

    /// Records that the output for `offset` is being sent, under the partition's current
    /// lease; `None` when the partition is not assigned (its next owner reads it again).
    pub fn sent(&mut self, partition: i32, offset: i64) -> Option<Lease> {
        let state = self.partitions.get_mut(&partition)?;
        state.rewind_to.get_or_insert(offset);
        state.in_flight.insert(offset);
        state.next = Some(state.next.map_or(offset + 1, |n| n.max(offset + 1)));
        Some(state.lease)
    }

    /// Records that the record at `offset` was dealt with and needs no output of its own;
    /// `None` when the partition is not assigned, else its current lease.
    pub fn processed(&mut self, partition: i32, offset: i64) -> Option<Lease> {
        let state = self.partitions.get_mut(&partition)?;
        state.rewind_to.get_or_insert(offset);
        state.next = Some(state.next.map_or(offset + 1, |n| n.max(offset + 1)));
        Some(state.lease)
    }

    /// Keeps commits of `partition` from reaching past `offset` (or lets them, with `None`).
    pub fn hold(&mut self, partition: i32, offset: Option<i64>) {
        if let Some(state) = self.partitions.get_mut(&partition) {
            state.hold = offset;
        }
    }

    /// Records that the output for `offset`, sent under `lease`, was acknowledged. Outputs of
    /// another assignment (a partition revoked since) are ignored.
    pub fn acknowledged(&mut self, partition: i32, lease: Lease, offset: i64) {
        if let Some(state) = self.partitions.get_mut(&partition)
            && state.lease == lease
        {
            state.in_flight.remove(offset);
        }
    }

    /// Records not yet acknowledged, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|s| s.in_flight.len()).sum()
    }

    /// Records not yet acknowledged in `partitions`.
    pub fn in_flight_in(&self, partitions: &[i32]) -> usize {
        partitions
            .iter()
            .filter_map(|p| self.partitions.get(p))
            .map(|s| s.in_flight.len())
            .sum()
    }

    /// The next offset to commit for each partition whose committable position moved since
    /// the last call: the lowest unacknowledged offset, or one past the highest sent.
    pub fn take_committable(&mut self) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&p, state) in &mut self.partitions {
            if let Some(position) = state.position()
                && state.stored != Some(position)
            {
                state.stored = Some(position);
                out.push((p, position));
            }
        }
        out
    }

    /// Exactly-once: one past the highest offset sent, for every partition that sent anything
    /// since its last committed transaction, never past its hold. A transaction commits its
    /// outputs all or none, so acknowledgements do not matter here.
    pub fn transaction_positions(&self) -> Vec<(i32, i64)> {
        let position = |s: &PartitionState| s.next.map(|n| s.hold.map_or(n, |h| h.min(n)));
        self.partitions
            .iter()
            .filter_map(|(&p, s)| {
                position(s)
                    .filter(|n| s.rewind_to != Some(*n))
                    .map(|n| (p, n))
            })
            .collect()
    }

    /// Exactly-once: a transaction committed these positions.
    pub fn transaction_committed(&mut self, positions: &[(i32, i64)]) {
        for (p, position) in positions {
            if let Some(state) = self.partitions.get_mut(p) {
                state.rewind_to = Some(*position);
            }
        }
    }

    /// Exactly-once: the open transaction aborted. Every partition that sent anything under
    /// it starts a new lease (so the aborted outputs' reports are ignored) and is read again
    /// from the returned position.
    pub fn rewind(&mut self) -> Vec<(i32, i64)> {
        let rewound: Vec<(i32, i64)> = self
            .partitions
            .iter()
            .filter_map(|(&p, s)| {
                let position = s.rewind_to?;
                s.next
                    .is_some_and(|n| n > position)
                    .then_some((p, position))
            })
            .collect();
        for &(p, position) in &rewound {
            let mut fresh = PartitionState::new(self.grant_lease(), Some(position));
            fresh.stored = self.partitions[&p].stored;
            fresh.assigned_as = self.partitions[&p].assigned_as;
            self.partitions.insert(p, fresh);
        }
        rewound
    }

    /// The committable position of every tracked partition, changed or not.
    pub fn committable(&self, partitions: &[i32]) -> Vec<(i32, i64)> {
        partitions
            .iter()
            .filter_map(|&p| Some((p, self.partitions.get(&p)?.position()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-flight set answers as a tree set would, whatever the order of sends and
    /// acknowledgements (mostly ascending sends, as a partition is read, and some not).
    #[test]
    fn in_flight_offsets_behave_as_a_set() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (mut ours, mut set) = (InFlight::default(), std::collections::BTreeSet::new());
        let mut next = 0i64;
        for _ in 0..20_000 {
            let offset = match rng.random_range(0..10) {
                0..=5 => {
                    next += rng.random_range(1..3);
                    next
                }
                _ => next - rng.random_range(0..40),
            };
            if rng.random_bool(0.45) {
                ours.insert(offset);
                set.insert(offset);
            } else {
                ours.remove(offset);
                set.remove(&offset);
            }
            assert_eq!(
                (ours.first(), ours.len()),
                (set.first().copied(), set.len())
            );
        }
    }

    #[test]
    fn a_hold_keeps_commits_before_it_in_both_modes() {
        let mut t = OffsetTracker::default();
        t.assign([0]);
        for offset in 0..5 {
            t.processed(0, offset);
        }
        t.hold(0, Some(2));
        assert_eq!(t.take_committable(), vec![(0, 2)]);
        assert_eq!(t.transaction_positions(), vec![(0, 2)]);
        // The window is published: its record holds the commit until acknowledged, the
        // transaction's position moves on (its outputs commit with it).
        let lease = t.sent(0, 2).unwrap();
        t.hold(0, None);
        assert_eq!(t.committable(&[0]), vec![(0, 2)]);
        assert_eq!(t.transaction_positions(), vec![(0, 5)]);
        t.acknowledged(0, lease, 2);
        assert_eq!(t.take_committable(), vec![(0, 5)]);
    }

    #[test]
    fn commits_only_the_acknowledged_prefix() {
        let mut t = OffsetTracker::default();
        t.assign([0, 1]);
        let mut lease = None;
        for o in 10..15 {
            lease = t.sent(0, o);
        }
        let lease = lease.unwrap();
        assert_eq!(t.take_committable(), vec![(0, 10)]);
        t.acknowledged(0, lease, 12);
        t.acknowledged(0, lease, 11);
        assert!(t.take_committable().is_empty(), "10 is still in flight");
        t.acknowledged(0, lease, 10);
        assert_eq!(t.take_committable(), vec![(0, 13)]);
        t.acknowledged(0, lease, 13);
        t.acknowledged(0, lease, 14);
        assert_eq!(t.take_committable(), vec![(0, 15)]);
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn revoked_partitions_ignore_late_acknowledgements() {
        let mut t = OffsetTracker::default();
        t.assign([3]);
        let lease = t.sent(3, 7).unwrap();
        t.revoke([3]);
        t.acknowledged(3, lease, 7);
        assert!(t.take_committable().is_empty());
        assert!(!t.is_assigned(3));
        assert_eq!(
            t.sent(3, 8),
            None,
            "nothing is sent for a partition not assigned"
        );
    }

    #[test]
    fn a_transaction_commits_what_was_sent_and_an_abort_rewinds_to_the_last_commit() {
        let mut t = OffsetTracker::default();
        t.assign([0, 1]);
        for o in 10..13 {
            t.sent(0, o);
        }
        assert_eq!(
            t.transaction_positions(),
            vec![(0, 13)],
            "acknowledged or not"
        );
        t.transaction_committed(&[(0, 13)]);
        assert!(t.transaction_positions().is_empty());

        let old = t.sent(0, 13).unwrap();
        t.sent(0, 14);
        let mut rewound = t.rewind();
        rewound.sort();
        assert_eq!(rewound, vec![(0, 13)], "partition 1 sent nothing");
        assert_eq!(t.in_flight(), 0);
        assert!(
            !t.holds(0, old),
            "outputs of the aborted transaction do not count"
        );
        assert!(t.transaction_positions().is_empty());

        // Never committed: back to the first offset sent.
        t.sent(1, 40);
        assert_eq!(t.rewind(), vec![(1, 40)]);
    }

    #[test]
    fn an_acknowledgement_from_an_earlier_assignment_does_not_count() {
        let mut t = OffsetTracker::default();
        t.assign([0]);
        let old = t.sent(0, 5).unwrap();
        // Revoked and assigned again: offset 5 is read and sent again.
        t.revoke([0]);
        t.assign([0]);
        let new = t.sent(0, 5).unwrap();
        assert_ne!(old, new);
        t.acknowledged(0, old, 5);
        assert_eq!(
            t.in_flight(),
            1,
            "the old copy's acknowledgement is ignored"
        );
        assert_eq!(t.take_committable(), vec![(0, 5)]);
        assert!(!t.holds(0, old) && t.holds(0, new));
        t.acknowledged(0, new, 5);
        assert_eq!(t.take_committable(), vec![(0, 6)]);
    }
}
