//! Timing summaries: median, min and max of a figure's runs.

use serde::{Deserialize, Serialize};

/// Wall times of one figure, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub median_ms: f64,
    /// 99th percentile (nearest rank).
    #[serde(default)]
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
    pub runs: usize,
}

impl Summary {
    /// The summary of `samples` (milliseconds); None without samples.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let mid = sorted.len() / 2;
        let median = match sorted.len() {
            0 => return None,
            n if n % 2 == 1 => sorted[mid],
            _ => (sorted[mid - 1] + sorted[mid]) / 2.0,
        };
        let p99_rank = (sorted.len() * 99).div_ceil(100).max(1);
        Some(Self {
            median_ms: median,
            p99_ms: sorted[p99_rank - 1],
            min_ms: sorted[0],
            max_ms: sorted[sorted.len() - 1],
            runs: sorted.len(),
        })
    }

    /// `12.3 ms (11.9–13.0)`.
    pub fn render(&self) -> String {
        format!(
            "{} ({}–{})",
            millis(self.median_ms),
            millis(self.min_ms),
            millis(self.max_ms)
        )
    }
}

/// A duration in milliseconds with precision fitting its size.
pub fn millis(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.2}")
    }
}

/// Geometric mean of positive values (0 without any).
pub fn geometric_mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    (values.iter().map(|v| v.ln()).sum::<f64>() / values.len() as f64).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_and_max() {
        let s = Summary::of(&[5.0, 1.0, 3.0, 9.0, 7.0]).unwrap();
        assert_eq!(
            (s.median_ms, s.min_ms, s.max_ms, s.runs),
            (5.0, 1.0, 9.0, 5)
        );
        let even = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!(even.median_ms, 2.5);
        let hundred: Vec<f64> = (1..=200).map(f64::from).collect();
        assert_eq!(Summary::of(&hundred).unwrap().p99_ms, 198.0);
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn geometric_mean_of_ratios() {
        assert!((geometric_mean(&[2.0, 8.0]) - 4.0).abs() < 1e-9);
        assert_eq!(geometric_mean(&[]), 0.0);
    }
}
