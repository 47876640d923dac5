//! Page's CUSUM over windows, for a shift too small for one window to see.
//!
//! Each window gives d, its mean score minus the reference's, in units of the scores'
//! standard deviation, over n records. Against a shift of δ (the design shift), the
//! log-likelihood ratio of the window is n δ (d − δ/2). The reference's own mean is off the
//! truth by at most `margin` (in the same units, with a stated probability), so the sides add
//!
//!   upper: W⁺ ← max(0, W⁺ + n δ (d − margin − δ/2)),   lower: the same with −d,
//!
//! and alarm at W ≥ h. Under no change each increment is at most a log-likelihood ratio, and
//! for such a CUSUM P(false alarm within t windows) ≤ t e^{−h} (each start is a sequential
//! probability ratio test, whose crossing probability is at most e^{−h}); with S sides
//! watched and h = ln(S L), a false alarm anywhere within t windows has probability at most
//! t / L. A side that alarms starts again from zero.

/// The two sides of one statistic's CUSUM.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cusum {
    /// Evidence of an upward shift.
    pub upper: f64,
    /// Evidence of a downward shift.
    pub lower: f64,
}

/// Which side alarmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The mean moved up.
    Up,
    /// The mean moved down.
    Down,
}

/// The CUSUM's design: the shift it is tuned to, the reference's error margin, the threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Design {
    /// δ, in the scores' standard deviations.
    pub shift: f64,
    /// The bound on the reference mean's error, in the same units.
    pub margin: f64,
    /// h.
    pub threshold: f64,
}

impl Design {
    /// Threshold for `sides` CUSUMs together to raise a false alarm at most once per
    /// `windows` windows: h = ln(sides · windows).
    pub fn threshold(sides: usize, windows: f64) -> f64 {
        (sides as f64 * windows).ln()
    }
}

impl Cusum {
    /// Adds a window with mean difference `d` over `n` records; returns the side that
    /// crossed the threshold (and resets it), if any.
    pub fn update(&mut self, d: f64, n: f64, design: &Design) -> Option<Side> {
        let step = |x: f64| n * design.shift * (x - design.margin - design.shift / 2.0);
        self.upper = (self.upper + step(d)).max(0.0);
        self.lower = (self.lower + step(-d)).max(0.0);
        if self.upper >= design.threshold {
            self.upper = 0.0;
            Some(Side::Up)
        } else if self.lower >= design.threshold {
            self.lower = 0.0;
            Some(Side::Down)
        } else {
            None
        }
    }

    /// The larger side over the threshold: 1 means an alarm.
    pub fn level(&self, design: &Design) -> f64 {
        self.upper.max(self.lower) / design.threshold
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    use super::*;

    #[test]
    fn false_alarms_stay_under_the_bound_and_a_persistent_shift_is_caught() {
        let n: f64 = 5000.0;
        let design = Design {
            shift: 0.025,
            margin: 0.0,
            threshold: Design::threshold(2, 1000.0),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        // 200 runs of 1,000 windows under no change: at most 1 false alarm per 1,000
        // windows is allowed (the bound), so 200 expected at most.
        let mut alarms = 0;
        for _ in 0..200 {
            let mut c = Cusum::default();
            for _ in 0..1000 {
                let d = rng.sample::<f64, _>(StandardNormal) / n.sqrt();
                alarms += usize::from(c.update(d, n, &design).is_some());
            }
        }
        assert!(alarms <= 200, "{alarms} false alarms in 200,000 windows");
        // A 0.04σ shift: each window's z is only 2.8, below any per-window threshold.
        let mut delays = Vec::new();
        for _ in 0..200 {
            let mut c = Cusum::default();
            let delay = (1..=100)
                .find(|_| {
                    let d = 0.04 + rng.sample::<f64, _>(StandardNormal) / n.sqrt();
                    c.update(d, n, &design) == Some(Side::Up)
                })
                .unwrap_or(101);
            delays.push(delay);
        }
        delays.sort_unstable();
        assert!(delays[100] <= 6, "median delay {}", delays[100]);
    }
}
