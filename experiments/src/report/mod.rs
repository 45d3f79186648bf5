//! Writing results: `summary.json`, CSV series, SVG plots, and the table printed beside the
//! papers' figures.

mod plot;

use std::fmt::Display;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::stats::Histogram;

pub use plot::{Bars, Curve, Line, plot_bars, plot_cdf, plot_lines};

/// A result that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be written.
    #[error("{path}: cannot write: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("{path}: cannot draw: {problem}")]
    Plot {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Create the output directory.
pub fn create_dir(dir: &Path) -> Result<(), ReportError> {
    fs::create_dir_all(dir).map_err(io_error(dir))
}

/// Write `value` as pretty JSON with a final newline. Same value, same bytes.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), ReportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ReportError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    text.push('\n');
    fs::write(path, text).map_err(io_error(path))
}

/// Write a CSV file with a header row.
pub fn write_csv<R, C>(path: &Path, header: &[&str], rows: R) -> Result<(), ReportError>
where
    R: IntoIterator<Item = C>,
    C: IntoIterator,
    C::Item: Display,
{
    let mut writer = csv::Writer::from_path(path).map_err(|e| ReportError::Io {
        path: path.to_owned(),
        source: e.into(),
    })?;
    let wrap = |e: csv::Error| ReportError::Io {
        path: path.to_owned(),
        source: e.into(),
    };
    writer.write_record(header).map_err(wrap)?;
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| c.to_string()).collect();
        writer.write_record(&cells).map_err(wrap)?;
    }
    writer.flush().map_err(io_error(path))
}

/// A plain-text table, columns aligned, for the terminal.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with a header row.
    pub fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|s| (*s).to_owned()).collect()],
        }
    }

    /// Add a row.
    pub fn row(&mut self, cells: &[String]) {
        self.rows.push(cells.to_vec());
    }

    /// Render with columns padded to their widest cell.
    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{s:<w$}", w = widths[c]))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
            if i == 0 {
                let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
                out.push_str(&rule.join("  "));
                out.push('\n');
            }
        }
        out
    }
}

/// A number for a table: up to `digits` decimals, or `n/a`.
pub fn fmt_opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.digits$}"))
}

/// Round to six significant decimals so JSON stays readable and stable.
pub fn round6(v: f64) -> f64 {
    if v.is_finite() {
        (v * 1e6).round() / 1e6
    } else {
        v
    }
}

/// Grouped bars of link-stress histograms, binned 1, 2, 3-4, 5-8, ... (log scale).
pub fn stress_bars<'a>(series: &[(&'a str, &Histogram)]) -> Bars<'a> {
    let max = series
        .iter()
        .filter_map(|(_, h)| h.max())
        .max()
        .unwrap_or(1);
    let bins = stress_bins(max);
    Bars {
        categories: bins
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}-{hi}")
                }
            })
            .collect(),
        series: series
            .iter()
            .map(|&(name, h)| {
                let values = bins
                    .iter()
                    .map(|&(lo, hi)| {
                        h.iter()
                            .filter(|&(v, _)| v >= lo && v <= hi)
                            .map(|(_, c)| c as f64)
                            .sum()
                    })
                    .collect();
                (name, values)
            })
            .collect(),
        log_y: true,
    }
}

/// Bins 1, 2, 3-4, 5-8, ... up to `max`.
fn stress_bins(max: u64) -> Vec<(u64, u64)> {
    let mut bins = vec![(1, 1)];
    let mut lo = 2;
    while lo <= max {
        let hi = if lo == 2 { 2 } else { (lo - 1) * 2 };
        bins.push((lo, hi));
        lo = hi + 1;
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let mut t = Table::new(&["metric", "value"]);
        t.row(&["rdp_p90".into(), "1.5".into()]);
        assert_eq!(t.render(), "metric   value\n-------  -----\nrdp_p90  1.5\n");
        assert_eq!(fmt_opt(None, 2), "n/a");
        assert_eq!(round6(1.23456789), 1.234568);
    }

    #[test]
    fn stress_bins_double() {
        assert_eq!(stress_bins(1), vec![(1, 1)]);
        assert_eq!(
            stress_bins(127),
            vec![
                (1, 1),
                (2, 2),
                (3, 4),
                (5, 8),
                (9, 16),
                (17, 32),
                (33, 64),
                (65, 128)
            ]
        );
        let mut h = Histogram::default();
        h.add(1);
        h.add(4);
        h.add(3);
        assert_eq!(stress_bars(&[("x", &h)]).series[0].1, vec![1.0, 0.0, 2.0]);
    }
}
