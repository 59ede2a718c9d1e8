//! Latency samples and their summary (nearest-rank percentiles).

use serde::Serialize;
use std::time::Duration;

/// Raw latencies of one step, in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<u64>);

/// Percentiles of one step, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub count: usize,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    pub fn summary(&self) -> Summary {
        let mut v = self.0.clone();
        v.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        // Nearest rank: the smallest sample with at least p% of samples at or below it.
        let pct = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            ms(v[rank.clamp(1, v.len()) - 1])
        };
        let mean = if v.is_empty() { 0.0 } else { v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64 / 1000.0 };
        Summary {
            count: v.len(),
            mean_ms: mean,
            p50_ms: pct(50.0),
            p90_ms: pct(90.0),
            p99_ms: pct(99.0),
            max_ms: v.last().copied().map(ms).unwrap_or(0.0),
        }
    }
}

/// Prints a table of named summaries.
pub fn print_table(rows: &[(&str, Summary)]) {
    println!("  {:<34} {:>8} {:>8} {:>8} {:>8} {:>8}", "step (ms)", "p50", "p90", "p99", "max", "mean");
    for (name, s) in rows {
        println!(
            "  {:<34} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.mean_ms
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=100u64 {
            s.push(Duration::from_millis(i));
        }
        let sum = s.summary();
        assert_eq!(sum.p50_ms, 50.0);
        assert_eq!(sum.p99_ms, 99.0);
        assert_eq!(sum.max_ms, 100.0);
        assert_eq!(Samples::default().summary().count, 0);
    }
}
