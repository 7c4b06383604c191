//! How many entries a bucket may hold (DESIGN.md section 5). Keyed hashing spreads entries over
//! the buckets like balls into bins, so a bucket's load is Poisson with the mean load; each limit
//! is the smallest count that a Poisson load exceeds in any bucket with probability below 1e-5.

/// The chance that any bucket refuses before the store holds what it was sized for.
const FAILURE: f64 = 1e-5;

/// The smallest `k` such that `P(X > k) · buckets < FAILURE` for `X ~ Poisson(total / buckets)`.
pub fn poisson_limit(total: usize, buckets: usize) -> usize {
    let buckets = buckets.max(1) as f64;
    let mean = total as f64 / buckets;
    let target = FAILURE / buckets;
    let mut pmf = (-mean).exp();
    let mut cdf = pmf;
    let mut k = 0usize;
    // The loop ends long before this bound for every mean proofgate allows (at most 64).
    while 1.0 - cdf >= target && k < 100_000 {
        k += 1;
        pmf *= mean / k as f64;
        cdf += pmf;
    }
    k.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_match_poisson_tails() {
        // Mean 1 over 65,536 buckets: P(X > 12) ≈ 9e-11, below 1e-5 / 65,536 = 1.5e-10.
        assert_eq!(poisson_limit(65_536, 65_536), 12);
        // Mean 0.25 (a quarter of the default store, one subject's share).
        assert_eq!(poisson_limit(16_384, 65_536), 8);
        // Mean 64 (the largest store): about 64 + 7 standard deviations.
        assert_eq!(poisson_limit(4_194_304, 65_536), 120);
        assert_eq!(poisson_limit(0, 65_536), 1);
    }
}
