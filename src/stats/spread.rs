//! Choosing a share of things by a hash, alike on every instance and every build (no
//! per-process seed): splitmix64's finalizer spreads a number evenly over `u64`, and FNV-1a
//! turns bytes into one first.

/// splitmix64's finalizer: spreads `x` evenly over `u64`.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// FNV-1a over `bytes`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    (bytes.iter()).fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether a spread number `x` falls in the first `share` (in [0, 1]) of `u64`.
pub fn within(x: u64, share: f64) -> bool {
    (x as f64) < share * u64::MAX as f64
}
