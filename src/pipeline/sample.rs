//! Choosing a share of the records (for shadow scoring and explanations) by their position
//! alone, so that a record read again after a rebalance is chosen again, and every instance
//! of a group chooses alike.

use crate::stats::spread::{mix, within};

/// Whether the record at `partition`, `offset` is one of `share` (in [0, 1]) of the records.
pub fn chosen(partition: i32, offset: i64, share: f64) -> bool {
    chosen_for(0, partition, offset, share)
}

/// [`chosen`] for another `purpose`: its choices are independent of the others'.
pub fn chosen_for(purpose: u64, partition: i32, offset: i64, share: f64) -> bool {
    let position = (partition as u64) << 48 ^ offset as u64;
    within(mix(position ^ mix(purpose)), share)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_chooses_about_that_share_and_the_bounds_choose_none_or_all() {
        let count = |share| (0..100_000).filter(|&o| chosen(3, o, share)).count();
        assert_eq!(count(0.0), 0);
        assert_eq!(count(1.0), 100_000);
        let tenth = count(0.1);
        assert!(
            (9_500..10_500).contains(&tenth),
            "{tenth} of 100,000 chosen"
        );
        assert!(
            chosen(3, 17, 0.5) == chosen(3, 17, 0.5),
            "the same record, the same choice"
        );
    }
}
