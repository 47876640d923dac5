//! The sums of a window's normal scores and of their products in pairs, over its complete
//! records: the p(p + 1)/2 products a record adds are the larger part of its update. They
//! are added [`BLOCK`] records at a time into a square of running sums whose rows are padded
//! to whole vectors, so that every row of the upper triangle is a run of whole vectors
//! (the few pairs below the diagonal this adds are left out when the window takes the
//! sums); each running sum is then read and written once a block, in fused multiply-adds of
//! eight sums (AVX-512) or four (AVX2) where the processor has them.

use crate::stats::profile::packed;

/// Records whose products are added together.
const BLOCK: usize = 8;
/// Sums a vector instruction holds: four `f64` in AVX2, eight in AVX-512.
const LANES: usize = 4;
const WIDE_LANES: usize = 8;

/// Complete records' scores waiting for their products, and the products' running sums.
#[derive(Debug, Clone)]
pub struct Products {
    p: usize,
    /// How the products are added.
    kernel: Kernel,
    /// `p` rounded up to whole lanes of the kernel: a row's length, in `rows` and `sums`.
    stride: usize,
    /// [`BLOCK`] rows of scores; the first `waiting` are records', the next is being filled.
    /// The padding past `p` stays zero.
    rows: Vec<f64>,
    waiting: usize,
    /// `stride` × `stride` running sums of products; (i, j) for j from i's first lane.
    sums: Vec<f64>,
}

impl Products {
    /// No records yet, of `p` scores each.
    pub fn new(p: usize) -> Self {
        Products::with(p, Kernel::detect())
    }

    fn with(p: usize, kernel: Kernel) -> Self {
        let stride = p.div_ceil(kernel.lanes()) * kernel.lanes();
        Products {
            p,
            kernel,
            stride,
            rows: vec![0.0; BLOCK * stride],
            waiting: 0,
            sums: vec![0.0; stride * stride],
        }
    }

    /// Where the next record's scores go: [`Products::add`] counts them, or a record with a
    /// missing value leaves them to be written over.
    pub fn next_row(&mut self) -> &mut [f64] {
        &mut self.rows[self.waiting * self.stride..][..self.p]
    }

    /// Counts the scores in [`Products::next_row`] into `sums` at once, and their products
    /// once a block is full.
    pub fn add(&mut self, sums: &mut [f64]) {
        for (sum, s) in sums.iter_mut().zip(self.next_row().iter()) {
            *sum += s;
        }
        self.waiting += 1;
        if self.waiting == BLOCK {
            self.add_waiting();
        }
    }

    /// Adds the waiting rows' products to the running sums; none wait after.
    fn add_waiting(&mut self) {
        let (rows, sums) = (&self.rows, &mut self.sums);
        let (stride, p) = (self.stride, self.p);
        match self.kernel {
            // SAFETY: `detect` chose the kernel for the instructions the processor has.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { add_block_avx512(rows, stride, p, sums) },
            #[cfg(target_arch = "x86_64")]
            Kernel::Fma => unsafe { add_block_fma(rows, stride, p, sums) },
            Kernel::Portable => {
                add_block_portable::<LANES>(rows, stride, p, sums, |a, b, sum| a * b + sum)
            }
        }
        self.waiting = 0;
    }

    /// Adds every product counted since the last take into `products` (packed,
    /// [`packed`]), and starts over (when a window closes).
    pub fn take(&mut self, products: &mut [f64]) {
        if self.waiting > 0 {
            // Rows not filled count as zeros: adding 0 × s leaves every sum as it is.
            self.rows[self.waiting * self.stride..].fill(0.0);
            self.add_waiting();
        }
        let (p, stride) = (self.p, self.stride);
        for i in 0..p {
            let row = &mut self.sums[i * stride..][..stride];
            let out = &mut products[packed(p, i, i)..][..p - i];
            for (total, sum) in out.iter_mut().zip(&row[i..p]) {
                *total += sum;
            }
            row.fill(0.0);
        }
    }
}

/// The instructions the products are added with.
#[derive(Debug, Clone, Copy)]
enum Kernel {
    /// Fused multiply-adds of eight sums.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// Fused multiply-adds of four sums.
    #[cfg(target_arch = "x86_64")]
    Fma,
    /// Multiplies and adds, as the compiler vectorizes them.
    Portable,
}

impl Kernel {
    /// Every kernel, fastest first.
    const ALL: &[Kernel] = &[
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512,
        #[cfg(target_arch = "x86_64")]
        Kernel::Fma,
        Kernel::Portable,
    ];

    /// The fastest this processor has.
    fn detect() -> Self {
        Kernel::ALL
            .iter()
            .copied()
            .find(|k| k.supported())
            .unwrap_or(Kernel::Portable)
    }

    fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Fma => {
                std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
            }
            Kernel::Portable => true,
        }
    }

    /// Sums a row's vectors hold.
    fn lanes(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => WIDE_LANES,
            _ => LANES,
        }
    }
}

/// Fused multiply-adds: one instruction a product and its sum, rounded once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn add_block_fma(rows: &[f64], stride: usize, p: usize, sums: &mut [f64]) {
    add_block_portable::<LANES>(rows, stride, p, sums, f64::mul_add)
}

/// The same, eight sums a vector.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn add_block_avx512(rows: &[f64], stride: usize, p: usize, sums: &mut [f64]) {
    add_block_portable::<WIDE_LANES>(rows, stride, p, sums, f64::mul_add)
}

/// Adds the products of a block's rows, (i, j) for every j from i's first lane, each as two
/// chains of `multiply_add(a, b, sum)` (a · b + sum) over alternate records.
#[inline(always)]
fn add_block_portable<const L: usize>(
    rows: &[f64],
    stride: usize,
    p: usize,
    sums: &mut [f64],
    multiply_add: impl Fn(f64, f64, f64) -> f64,
) {
    let rows = &rows[..BLOCK * stride];
    let r: [&[f64]; BLOCK] = std::array::from_fn(|k| &rows[k * stride..][..stride]);
    for i in 0..p {
        let a: [f64; BLOCK] = std::array::from_fn(|k| r[k][i]);
        let first = i - i % L;
        let out = &mut sums[i * stride + first..][..stride - first];
        for (c, lanes) in out.chunks_exact_mut(L).enumerate() {
            let j = first + c * L;
            let b: [&[f64]; BLOCK] = std::array::from_fn(|k| &r[k][j..j + L]);
            for (l, sum) in lanes.iter_mut().enumerate() {
                let (mut even, mut odd) = (0.0, 0.0);
                for k in (0..BLOCK).step_by(2) {
                    even = multiply_add(a[k], b[k][l], even);
                    odd = multiply_add(a[k + 1], b[k + 1][l], odd);
                }
                *sum += even + odd;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_a_partial_block_add_up_to_every_product() {
        let kernels = Kernel::ALL.iter().copied().filter(|k| k.supported());
        for (kernel, p) in kernels.flat_map(|k| [1, 3, 4, 5, 8, 9, 17].map(|p| (k, p))) {
            let records: Vec<Vec<f64>> = (0..19)
                .map(|k| {
                    (0..p)
                        .map(|f| ((k * 7 + f * 3) % 11) as f64 - 5.0)
                        .collect()
                })
                .collect();
            let mut products = Products::with(p, kernel);
            let (mut sums, mut packed_products) = (vec![0.0; p], vec![0.0; p * (p + 1) / 2]);
            for (n, record) in records.iter().enumerate() {
                products.next_row().copy_from_slice(record);
                products.add(&mut sums);
                if n == 10 {
                    products.take(&mut packed_products);
                }
            }
            products.take(&mut packed_products);
            for i in 0..p {
                assert_eq!(sums[i], records.iter().map(|r| r[i]).sum::<f64>());
                for j in i..p {
                    let expected: f64 = records.iter().map(|r| r[i] * r[j]).sum();
                    assert_eq!(
                        packed_products[packed(p, i, j)],
                        expected,
                        "{kernel:?}, p {p}, ({i}, {j})"
                    );
                }
            }
        }
    }
}
