//! Summaries of samples: quantiles, means, histograms.

use std::collections::BTreeMap;

/// The least-squares slope of `ys` against `xs` (0 with fewer than two points or no spread).
pub fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 { 0.0 } else { sxy / sxx }
}

/// Sorted samples, for quantiles and extremes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Distribution {
    sorted: Vec<f64>,
}

impl Distribution {
    /// Samples, NaN dropped.
    pub fn new(mut samples: Vec<f64>) -> Self {
        samples.retain(|x| !x.is_nan());
        samples.sort_by(f64::total_cmp);
        Self { sorted: samples }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The `q` quantile (`0.0..=1.0`), interpolating linearly between ranks; `None` if empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        let frac = pos - lo as f64;
        Some(self.sorted[lo] + (self.sorted[hi] - self.sorted[lo]) * frac)
    }

    /// The mean; `None` if empty.
    pub fn mean(&self) -> Option<f64> {
        (!self.sorted.is_empty())
            .then(|| self.sorted.iter().sum::<f64>() / self.sorted.len() as f64)
    }

    /// The population standard deviation; `None` if empty.
    pub fn std_dev(&self) -> Option<f64> {
        let mean = self.mean()?;
        let var =
            self.sorted.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / self.sorted.len() as f64;
        Some(var.sqrt())
    }

    /// The largest sample.
    pub fn max(&self) -> Option<f64> {
        self.sorted.last().copied()
    }

    /// The smallest sample.
    pub fn min(&self) -> Option<f64> {
        self.sorted.first().copied()
    }

    /// The samples, ascending.
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }
}

/// Counts of whole-number values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u64, u64>,
}

impl Histogram {
    /// Count `value` once.
    pub fn add(&mut self, value: u64) {
        *self.counts.entry(value).or_default() += 1;
    }

    /// Add every count of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (&v, &c) in &other.counts {
            *self.counts.entry(v).or_default() += c;
        }
    }

    /// `(value, count)` pairs, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts.iter().map(|(&v, &c)| (v, c))
    }

    /// The largest value counted.
    pub fn max(&self) -> Option<u64> {
        self.counts.keys().next_back().copied()
    }

    /// Number of values counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Mean of the values counted.
    pub fn mean(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| {
            self.counts
                .iter()
                .map(|(&v, &c)| v as f64 * c as f64)
                .sum::<f64>()
                / total as f64
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_and_spread() {
        assert!((slope(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 2.0).abs() < 1e-12);
        assert_eq!(slope(&[1.0], &[5.0]), 0.0);
        let d = Distribution::new(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(d.std_dev(), Some(2.0));
        assert_eq!(Distribution::new(vec![]).std_dev(), None);
    }

    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let d = Distribution::new(vec![4.0, 1.0, 3.0, 2.0, f64::NAN]);
        assert_eq!(d.len(), 4);
        assert_eq!(d.quantile(0.0), Some(1.0));
        assert_eq!(d.quantile(0.5), Some(2.5));
        assert_eq!(d.quantile(1.0), Some(4.0));
        assert_eq!(d.mean(), Some(2.5));
        assert_eq!(Distribution::default().quantile(0.5), None);
    }

    #[test]
    fn histogram_counts_and_merges() {
        let mut h = Histogram::default();
        h.add(1);
        h.add(1);
        h.add(5);
        let mut g = Histogram::default();
        g.add(5);
        h.merge(&g);
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![(1, 2), (5, 2)]);
        assert_eq!(h.max(), Some(5));
        assert_eq!(h.mean(), Some(3.0));
    }
}
