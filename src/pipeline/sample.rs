//! Choosing a share of the records (for shadow scoring and explanations) by their position
//! alone, so that a record read again after a rebalance is chosen again, and every instance
//! of a group chooses alike.

/// Whether the record at `partition`, `offset` is one of `share` (in [0, 1]) of the records.
pub fn chosen(partition: i32, offset: i64, share: f64) -> bool {
    chosen_for(0, partition, offset, share)
}

/// [`chosen`] for another `purpose`: its choices are independent of the others'.
pub fn chosen_for(purpose: u64, partition: i32, offset: i64, share: f64) -> bool {
    let position = (partition as u64) << 48 ^ offset as u64;
    (mix(position ^ mix(purpose)) as f64) < share * u64::MAX as f64
}

/// splitmix64's finalizer: spreads positions evenly over `u64`.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
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
