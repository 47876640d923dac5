//! The sums of a window's normal scores and of their products in pairs, over its complete
//! records: the p(p + 1)/2 products a record adds are the larger part of its update. They
//! are added [`BLOCK`] records at a time, so that each running sum is read and written once a
//! block instead of once a record (the four products of a pair are summed in registers
//! first), in AVX2 instructions where the processor has them.

use crate::stats::profile::packed;

/// Records whose products are added together.
const BLOCK: usize = 4;

/// Complete records' scores waiting for their products.
#[derive(Debug, Clone)]
pub struct Products {
    p: usize,
    /// [`BLOCK`] rows of scores; the first `waiting` are records', the next is being filled.
    rows: Vec<f64>,
    waiting: usize,
}

impl Products {
    /// No records yet, of `p` scores each.
    pub fn new(p: usize) -> Self {
        Products {
            p,
            rows: vec![0.0; BLOCK * p],
            waiting: 0,
        }
    }

    /// Where the next record's scores go: [`Products::add`] counts them, or a record with a
    /// missing value leaves them to be written over.
    pub fn next_row(&mut self) -> &mut [f64] {
        &mut self.rows[self.waiting * self.p..][..self.p]
    }

    /// Counts the scores in [`Products::next_row`] into `sums` at once, and their products
    /// into `products` (packed, [`packed`]) once a block is full.
    pub fn add(&mut self, sums: &mut [f64], products: &mut [f64]) {
        for (sum, s) in sums.iter_mut().zip(self.next_row().iter()) {
            *sum += s;
        }
        self.waiting += 1;
        if self.waiting == BLOCK {
            self.flush(products);
        }
    }

    /// Adds the waiting records' products into `products` (when a window closes).
    pub fn flush(&mut self, products: &mut [f64]) {
        if self.waiting == 0 {
            return;
        }
        // Rows not filled count as zeros: adding 0 × s leaves every sum as it is.
        self.rows[self.waiting * self.p..].fill(0.0);
        add_block(&self.rows, self.p, products);
        self.waiting = 0;
    }
}

fn add_block(rows: &[f64], p: usize, products: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor has AVX2, checked just above.
        unsafe { add_block_avx2(rows, p, products) };
        return;
    }
    add_block_portable(rows, p, products);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn add_block_avx2(rows: &[f64], p: usize, products: &mut [f64]) {
    add_block_portable(rows, p, products)
}

#[inline(always)]
fn add_block_portable(rows: &[f64], p: usize, products: &mut [f64]) {
    let (r0, rest) = rows.split_at(p);
    let (r1, rest) = rest.split_at(p);
    let (r2, r3) = rest.split_at(p);
    for i in 0..p {
        let (a0, a1, a2, a3) = (r0[i], r1[i], r2[i], r3[i]);
        let out = &mut products[packed(p, i, i)..][..p - i];
        let each = (r0[i..].iter().zip(&r1[i..])).zip(r2[i..].iter().zip(&r3[i..]));
        for (sum, ((b0, b1), (b2, b3))) in out.iter_mut().zip(each) {
            *sum += (a0 * b0 + a1 * b1) + (a2 * b2 + a3 * b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_a_partial_block_add_up_to_every_product() {
        let p = 3;
        let records: Vec<[f64; 3]> = (0..7)
            .map(|k| [k as f64, 1.0 - k as f64 / 2.0, (k * k) as f64 / 4.0])
            .collect();
        let mut products = Products::new(p);
        let (mut sums, mut packed_products) = (vec![0.0; p], vec![0.0; p * (p + 1) / 2]);
        for record in &records {
            products.next_row().copy_from_slice(record);
            products.add(&mut sums, &mut packed_products);
        }
        products.flush(&mut packed_products);
        for i in 0..p {
            assert_eq!(sums[i], records.iter().map(|r| r[i]).sum::<f64>());
            for j in i..p {
                let expected: f64 = records.iter().map(|r| r[i] * r[j]).sum();
                assert_eq!(packed_products[packed(p, i, j)], expected, "({i}, {j})");
            }
        }
    }
}
