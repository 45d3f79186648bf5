//! What a run itself costs: its wall time and the process's peak resident memory during it,
//! for the sweeps' `run_cost.csv` (never in `summary.json`, which must replay byte for byte).
//! Peak memory is the kernel's high-water mark (`VmHWM` in `/proc/self/status`), reset before
//! the run by writing `5` to `/proc/self/clear_refs` (Linux 4.0 and later); where either fails
//! it is unknown rather than a figure that covers more than the run.

use std::time::Instant;

/// Wall time and peak memory of one run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RunCost {
    /// Seconds of wall time.
    pub wall_s: f64,
    /// Peak resident memory during the run, MB (10^6 bytes); `None` if the kernel does not say.
    pub peak_rss_mb: Option<f64>,
}

/// Run `f` and say what it cost.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, RunCost) {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let start = Instant::now();
    let out = f();
    let wall_s = start.elapsed().as_secs_f64();
    let peak_rss_mb = reset
        .then(peak_rss_kb)
        .flatten()
        .map(|kb| kb as f64 * 1024.0 / 1e6);
    (
        out,
        RunCost {
            wall_s,
            peak_rss_mb,
        },
    )
}

/// `VmHWM` of this process, kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse().ok())
}

impl RunCost {
    /// The CSV cells: wall seconds, peak MB (empty when unknown).
    pub fn cells(&self) -> [String; 2] {
        [
            format!("{:.3}", self.wall_s),
            self.peak_rss_mb
                .map_or_else(String::new, |mb| format!("{mb:.1}")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_high_water_mark_and_nothing_else() {
        let status =
            "Name:\texperiments\nVmPeak:\t  900 kB\nVmHWM:\t   123456 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(123_456));
        assert_eq!(parse_vm_hwm("VmRSS:\t 1000 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\t lots kB\n"), None);
    }

    #[test]
    fn a_run_that_holds_memory_is_seen_to_hold_it() {
        let ((), cost) = measure(|| {
            let block = vec![1u8; 64 << 20];
            assert_eq!(block.iter().map(|&b| u64::from(b)).sum::<u64>(), 64 << 20);
        });
        assert!(cost.wall_s >= 0.0);
        if let Some(mb) = cost.peak_rss_mb {
            assert!(mb >= 64.0, "peak {mb} MB while 64 MiB were touched");
        }
    }
}
