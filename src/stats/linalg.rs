//! The little linear algebra the tests need: a Cholesky factor of a covariance matrix that
//! leaves out variables explained by the others, and solving with it.

/// The lower Cholesky factor of the covariance of a subset of the variables: each variable in
/// turn, kept unless what is left of its variance after the kept ones explain theirs is a
/// negligible share of its own (a constant, or a copy or sum of others). The kept set has a
/// well-conditioned covariance; its size is the rank of the test statistics built on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cholesky {
    /// Indices of the kept variables, increasing.
    pub kept: Vec<usize>,
    /// Row-major lower triangle, `kept.len()` × `kept.len()`.
    lower: Vec<f64>,
}

/// Share of a variable's variance below which it counts as explained by the others.
const EXPLAINED: f64 = 1e-6;

impl Cholesky {
    /// Factors the symmetric p × p matrix `a(i, j)`.
    pub fn new(p: usize, a: impl Fn(usize, usize) -> f64) -> Self {
        let mut kept: Vec<usize> = Vec::new();
        let mut lower: Vec<f64> = Vec::new();
        for v in 0..p {
            let own = a(v, v);
            if own.is_nan() || own <= 0.0 {
                continue;
            }
            let q = kept.len();
            // Row of the new variable against the kept ones.
            let mut row = vec![0.0; q + 1];
            for (c, &k) in kept.iter().enumerate() {
                let dot: f64 = (0..c).map(|t| row[t] * lower[c * q + t]).sum();
                row[c] = (a(v, k) - dot) / lower[c * q + c];
            }
            let residual = own - row[..q].iter().map(|x| x * x).sum::<f64>();
            if residual <= EXPLAINED * own {
                continue;
            }
            row[q] = residual.sqrt();
            lower = Self::grow(&lower, q, &row);
            kept.push(v);
        }
        Cholesky { kept, lower }
    }

    /// The q × q factor `lower` with `row` appended as row q (and column q zero above it).
    fn grow(lower: &[f64], q: usize, row: &[f64]) -> Vec<f64> {
        let n = q + 1;
        let mut out = vec![0.0; n * n];
        for r in 0..q {
            out[r * n..r * n + q].copy_from_slice(&lower[r * q..r * q + q]);
        }
        out[q * n..q * n + n].copy_from_slice(row);
        out
    }

    /// Variables kept.
    pub fn rank(&self) -> usize {
        self.kept.len()
    }

    /// xᵀ A⁻¹ x over the kept variables, for `x` indexed by all p variables.
    pub fn quadratic_form(&self, x: &[f64]) -> f64 {
        let q = self.rank();
        // Forward substitution, L y = x_kept: then xᵀ A⁻¹ x = yᵀ y.
        let mut y = vec![0.0; q];
        for r in 0..q {
            let dot: f64 = (0..r).map(|c| self.lower[r * q + c] * y[c]).sum();
            y[r] = (x[self.kept[r]] - dot) / self.lower[r * q + r];
        }
        y.iter().map(|v| v * v).sum()
    }

    /// L z for `z` over the kept variables: a draw with this covariance from independent
    /// standard normal `z`.
    pub fn correlate(&self, z: &[f64]) -> Vec<f64> {
        let q = self.rank();
        (0..q)
            .map(|r| (0..=r).map(|c| self.lower[r * q + c] * z[c]).sum())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_and_leaves_out_dependent_variables() {
        // Variables 0 and 1 correlated 0.5; variable 2 is variable 0 again; 3 is constant.
        let m = [
            [1.0, 0.5, 1.0, 0.0],
            [0.5, 1.0, 0.5, 0.0],
            [1.0, 0.5, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ];
        let c = Cholesky::new(4, |i, j| m[i][j]);
        assert_eq!(c.kept, vec![0, 1]);
        // xᵀ A⁻¹ x for A = [[1, .5], [.5, 1]], x = (1, 1): 2 / 1.5.
        let q = c.quadratic_form(&[1.0, 1.0, 9.0, 9.0]);
        assert!((q - 2.0 / 1.5).abs() < 1e-12, "{q}");
        // L Lᵀ = A.
        let l0 = c.correlate(&[1.0, 0.0]);
        let l1 = c.correlate(&[0.0, 1.0]);
        let a01 = l0[0] * l0[1] + l1[0] * l1[1];
        assert!((a01 - 0.5).abs() < 1e-12);
    }
}
