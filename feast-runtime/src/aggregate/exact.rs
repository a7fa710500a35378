//! Exact sums of doubles, so that an aggregate does not depend on the order
//! its events were added in.
//!
//! A floating-point sum depends on the order of its additions; the stream
//! adds events as batches arrive, retrieval in file order. [`ExactSum`]
//! keeps the sum exactly, as a short list of non-overlapping doubles
//! (Shewchuk's expansions, the method of Python's `math.fsum`), and rounds
//! once when it is read: the same events give the same double, bit for bit,
//! in any order and any grouping into tiles. Variances come from the exact
//! sums of the values and of their exact squares, rounded once as well.

/// The sum of finite doubles kept exactly; non-finite values are summed
/// apart (any NaN, or both infinities, give NaN; one infinity wins over
/// every finite value), which is order-independent too.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactSum {
    /// Non-overlapping, increasing in magnitude; their sum is the value.
    partials: Vec<f64>,
    /// The sum of the non-finite values added, 0 if none.
    special: f64,
}

impl ExactSum {
    /// Adds `x` exactly.
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut x = x;
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        if x.is_finite() {
            self.partials.push(x);
        } else {
            // The finite values overflowed the double range.
            self.special += x;
        }
    }

    /// Adds another exact sum.
    pub fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.special += other.special;
    }

    /// The sum, correctly rounded to a double.
    pub fn value(&self) -> f64 {
        if self.special != 0.0 {
            return self.special;
        }
        round(&self.partials)
    }

    /// The parts whose sum is the value (for encoding).
    pub fn parts(&self) -> (&[f64], f64) {
        (&self.partials, self.special)
    }

    /// An exact sum from parts written by [`parts`](Self::parts).
    pub fn from_parts(partials: Vec<f64>, special: f64) -> ExactSum {
        ExactSum { partials, special }
    }

    /// Whether nothing but zeros was added.
    pub fn is_zero(&self) -> bool {
        self.special == 0.0 && self.partials.iter().all(|p| *p == 0.0)
    }
}

/// The correctly rounded sum of non-overlapping partials, increasing in
/// magnitude (the last step of `fsum`, with its half-way correction).
fn round(partials: &[f64]) -> f64 {
    let Some((&last, rest)) = partials.split_last() else {
        return 0.0;
    };
    let mut hi = last;
    let mut lo = 0.0;
    let mut j = rest.len();
    while j > 0 {
        let x = hi;
        j -= 1;
        let y = rest[j];
        hi = x + y;
        let yr = hi - x;
        lo = y - yr;
        if lo != 0.0 {
            break;
        }
    }
    // Round half to even would be wrong when the partials below `lo` push
    // the exact value past the half-way point: correct for it.
    if j > 0 && ((lo < 0.0 && rest[j - 1] < 0.0) || (lo > 0.0 && rest[j - 1] > 0.0)) {
        let y = lo * 2.0;
        let x = hi + y;
        let yr = x - hi;
        if y == yr {
            hi = x;
        }
    }
    hi
}

/// `a * b` as `hi + lo` exactly (Dekker's product; no overflow assumed).
fn two_product(a: f64, b: f64) -> (f64, f64) {
    fn split(a: f64) -> (f64, f64) {
        let c = 134_217_729.0 * a; // 2^27 + 1
        let hi = c - (c - a);
        (hi, a - hi)
    }
    let p = a * b;
    if !p.is_finite() {
        return (p, 0.0);
    }
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    let e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
    (p, e)
}

/// Adds `x * x` to `sum` exactly (both halves of the product).
pub fn add_square(sum: &mut ExactSum, x: f64) {
    let (hi, lo) = two_product(x, x);
    sum.add(hi);
    if lo != 0.0 {
        sum.add(lo);
    }
}

/// `n * S2 - S1^2` rounded once, where `s1` is the exact sum of `n` values
/// and `s2` the exact sum of their squares: `n^2` times their population
/// variance. Never negative, since it is exact before the rounding.
pub fn spread(n: u64, s1: &ExactSum, s2: &ExactSum) -> f64 {
    if s1.special != 0.0 || s2.special != 0.0 {
        return f64::NAN;
    }
    let n = n as f64;
    let mut acc = ExactSum::default();
    for &p in &s2.partials {
        let (hi, lo) = two_product(p, n);
        acc.add(hi);
        acc.add(lo);
    }
    for &a in &s1.partials {
        for &b in &s1.partials {
            let (hi, lo) = two_product(a, b);
            acc.add(-hi);
            acc.add(-lo);
        }
    }
    acc.value().max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(xs: &[f64]) -> f64 {
        let mut s = ExactSum::default();
        for &x in xs {
            s.add(x);
        }
        s.value()
    }

    #[test]
    fn the_sum_is_exact_and_the_same_in_any_order() {
        assert_eq!(sum(&[0.1, 0.2, 0.3]), 0.6);
        assert_eq!(sum(&[1e100, 1.0, -1e100]), 1.0);
        assert_eq!(sum(&[1e100, 1.0, -1e100, 1e-100]), 1.0);
        let xs = [0.1, 1e16, -0.3, 2.5e-7, -1e16, 3.0, 1.0 / 3.0];
        let forward = sum(&xs);
        let mut rev = xs;
        rev.reverse();
        assert_eq!(forward.to_bits(), sum(&rev).to_bits());
        // Merging parts in another grouping gives the same double.
        let (mut a, mut b) = (ExactSum::default(), ExactSum::default());
        for (i, &x) in xs.iter().enumerate() {
            if i % 2 == 0 { a.add(x) } else { b.add(x) }
        }
        b.merge(&a);
        assert_eq!(b.value().to_bits(), forward.to_bits());
    }

    #[test]
    fn half_way_cases_round_as_python_fsum_does() {
        // fsum([1e16, 1., 1e-16]) == 1.0000000000000002e16 in Python.
        assert_eq!(sum(&[1e16, 1.0, 1e-16]), 1.000_000_000_000_000_2e16);
        assert_eq!(sum(&[1e16, 1.0]), 1e16);
    }

    #[test]
    fn non_finite_values_do_not_depend_on_order() {
        assert!(sum(&[1.0, f64::NAN, 2.0]).is_nan());
        assert!(sum(&[f64::INFINITY, 1.0, f64::NEG_INFINITY]).is_nan());
        assert_eq!(sum(&[f64::INFINITY, 1.0, -5.0]), f64::INFINITY);
        assert_eq!(sum(&[]), 0.0);
    }

    #[test]
    fn the_spread_is_exact_where_the_textbook_formula_cancels() {
        // Values near 1e9 with variance 2/3 (population): S2 - S1^2/n
        // computed in doubles loses every digit here.
        let xs = [1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0];
        let (mut s1, mut s2) = (ExactSum::default(), ExactSum::default());
        for &x in &xs {
            s1.add(x);
            add_square(&mut s2, x);
        }
        // n * sum((x - mean)^2) = 3 * 2 = 6.
        assert_eq!(spread(3, &s1, &s2), 6.0);
    }
}
