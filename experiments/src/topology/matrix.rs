//! Measured host-to-host round-trip-time matrices.
//!
//! CSV: a header row of names (first cell ignored), then one row per host starting with its name,
//! values in milliseconds, an empty cell for an unmeasured pair. A file of numbers only (N rows of
//! N values) is also accepted. The two directions of a pair are averaged when both were measured;
//! pairs measured in neither direction get the shortest path through measured pairs, and how many
//! were filled is reported. Hosts are the overlay members; one-way delay is RTT / 2.

use std::time::Duration;

use super::TopologyError;
use crate::spec::Spec;

/// A complete, symmetric RTT matrix between named hosts.
#[derive(Clone, Debug)]
pub struct LatencyMatrix {
    /// A name for reports.
    pub name: String,
    names: Vec<String>,
    /// Row-major RTTs in microseconds.
    rtt: Vec<u64>,
    /// Row-major: whether the pair was measured (in either direction).
    measured: Vec<bool>,
    /// What loading changed, for reports.
    pub notes: Vec<String>,
}

/// Keys a `matrix:` spec accepts after its path.
pub const KEYS: &[&str] = &[];

/// Load a matrix as a `matrix:PATH` spec says.
pub fn load(spec: Spec) -> Result<LatencyMatrix, TopologyError> {
    let path = spec.path().unwrap_or_default().to_owned();
    spec.finish(KEYS)?;
    let text = std::fs::read_to_string(&path).map_err(|source| TopologyError::Io {
        path: path.clone(),
        source,
    })?;
    parse(&path, &text)
}

/// Parse CSV text; `path` only names the file in errors.
pub fn parse(path: &str, text: &str) -> Result<LatencyMatrix, TopologyError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            TopologyError::invalid(path, format!("line {line}"), format!("not valid CSV: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let cells: Vec<String> = record.iter().map(|c| c.trim().to_owned()).collect();
        if cells.iter().all(String::is_empty) {
            continue;
        }
        rows.push((line, cells));
    }
    let Some((_, first)) = rows.first() else {
        return Err(TopologyError::invalid(path, "line 1", "the file is empty"));
    };
    let numeric = first
        .iter()
        .all(|c| c.is_empty() || c.parse::<f64>().is_ok());
    let (names, body): (Vec<String>, &[(u64, Vec<String>)]) = if numeric {
        (
            (0..rows.len()).map(|i| format!("h{i}")).collect(),
            &rows[..],
        )
    } else {
        (first[1..].to_vec(), &rows[1..])
    };
    let n = names.len();
    if n < 2 {
        return Err(TopologyError::invalid(
            path,
            "line 1",
            format!("a matrix needs at least 2 hosts, found {n}"),
        ));
    }
    if body.len() != n {
        return Err(TopologyError::invalid(
            path,
            "the matrix",
            format!("{n} hosts are named but {} rows follow", body.len()),
        ));
    }
    let mut cells: Vec<Option<f64>> = vec![None; n * n];
    for (i, (line, row)) in body.iter().enumerate() {
        let at = format!("line {line}");
        let values = if numeric {
            &row[..]
        } else {
            if row[0] != names[i] {
                return Err(TopologyError::invalid(
                    path,
                    &at,
                    format!(
                        "row {} is named {:?} but column {} is {:?}; rows must follow the header's order",
                        i + 1,
                        row[0],
                        i + 1,
                        names[i]
                    ),
                ));
            }
            &row[1..]
        };
        if values.len() != n {
            return Err(TopologyError::invalid(
                path,
                &at,
                format!("expected {n} values, found {}", values.len()),
            ));
        }
        for (j, cell) in values.iter().enumerate() {
            if cell.is_empty() || i == j {
                continue;
            }
            let column = j + 1 + usize::from(!numeric);
            match cell.parse::<f64>() {
                Ok(ms) if (0.0..1e7).contains(&ms) => cells[i * n + j] = Some(ms),
                _ => {
                    return Err(TopologyError::invalid(
                        path,
                        format!("{at}, column {column}"),
                        format!(
                            "RTT from {} to {} is {cell:?}, not a non-negative number of milliseconds",
                            names[i], names[j]
                        ),
                    ));
                }
            }
        }
    }
    build(path, names, &cells)
}

fn build(
    path: &str,
    names: Vec<String>,
    cells: &[Option<f64>],
) -> Result<LatencyMatrix, TopologyError> {
    let n = names.len();
    let mut rtt = vec![u64::MAX; n * n];
    let mut measured = vec![false; n * n];
    let mut one_way_only = 0;
    for i in 0..n {
        rtt[i * n + i] = 0;
        for j in i + 1..n {
            let value = match (cells[i * n + j], cells[j * n + i]) {
                (Some(a), Some(b)) => Some((a + b) / 2.0),
                (Some(v), None) | (None, Some(v)) => {
                    one_way_only += 1;
                    Some(v)
                }
                (None, None) => None,
            };
            if let Some(ms) = value {
                let us = (ms * 1e3).round() as u64;
                rtt[i * n + j] = us;
                rtt[j * n + i] = us;
                measured[i * n + j] = true;
                measured[j * n + i] = true;
            }
        }
    }
    // Shortest paths through measured pairs (Floyd-Warshall), used only for unmeasured pairs.
    let mut through = rtt.clone();
    for k in 0..n {
        for i in 0..n {
            let ik = through[i * n + k];
            if ik == u64::MAX {
                continue;
            }
            for j in 0..n {
                let candidate = ik.saturating_add(through[k * n + j]);
                if candidate < through[i * n + j] {
                    through[i * n + j] = candidate;
                }
            }
        }
    }
    let mut filled = 0;
    for i in 0..n {
        for j in i + 1..n {
            if !measured[i * n + j] {
                let via = through[i * n + j];
                if via == u64::MAX {
                    return Err(TopologyError::invalid(
                        path,
                        "the matrix",
                        format!(
                            "hosts {} and {} have no measured path between them",
                            names[i], names[j]
                        ),
                    ));
                }
                rtt[i * n + j] = via;
                rtt[j * n + i] = via;
                filled += 1;
            }
        }
    }
    let mut notes = Vec::new();
    if filled > 0 {
        notes.push(format!(
            "{filled} unmeasured pairs filled with the shortest path through measured pairs"
        ));
    }
    if one_way_only > 0 {
        notes.push(format!(
            "{one_way_only} pairs measured in one direction only"
        ));
    }
    let name = path.rsplit('/').next().unwrap_or(path).to_owned();
    Ok(LatencyMatrix {
        name,
        names,
        rtt,
        measured,
        notes,
    })
}

impl LatencyMatrix {
    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the matrix has no hosts (never true for a loaded matrix).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Host names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Round-trip time between hosts `i` and `j`.
    pub fn rtt(&self, i: usize, j: usize) -> Duration {
        Duration::from_micros(self.rtt[i * self.len() + j])
    }

    /// One-way delay between hosts `i` and `j` (RTT / 2).
    pub fn one_way(&self, i: usize, j: usize) -> Duration {
        Duration::from_micros(self.rtt[i * self.len() + j] / 2)
    }

    /// Whether the pair was measured (rather than filled).
    pub fn is_measured(&self, i: usize, j: usize) -> bool {
        self.measured[i * self.len() + j]
    }

    /// Share of triangles of measured pairs in which one side is longer than the other two
    /// together: how far real routing is from a metric (an overlay can beat such a side).
    pub fn triangle_violation_share(&self) -> f64 {
        let n = self.len();
        let (mut triangles, mut violating) = (0u64, 0u64);
        for i in 0..n {
            for j in i + 1..n {
                if !self.measured[i * n + j] {
                    continue;
                }
                let ij = self.rtt[i * n + j];
                for k in j + 1..n {
                    if !(self.measured[i * n + k] && self.measured[j * n + k]) {
                        continue;
                    }
                    let (ik, jk) = (self.rtt[i * n + k], self.rtt[j * n + k]);
                    triangles += 1;
                    if ij > ik + jk || ik > ij + jk || jk > ij + ik {
                        violating += 1;
                    }
                }
            }
        }
        if triangles == 0 {
            0.0
        } else {
            violating as f64 / triangles as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wondernetwork_matrix() {
        let path = format!(
            "{}/../data/latency/wondernetwork-2018-242cities-rtt-ms.csv",
            env!("CARGO_MANIFEST_DIR")
        );
        let m = load(Spec::parse(&format!("matrix:{path}"), |_| true).unwrap()).unwrap();
        assert_eq!(m.len(), 242);
        assert_eq!(m.names()[0], "Adelaide");
        assert_eq!(m.rtt(0, 1), Duration::from_micros(248_410));
        let share = m.triangle_violation_share();
        assert!((0.05..0.4).contains(&share), "{share}");
        assert!(
            m.notes.iter().any(|n| n.contains("filled")),
            "{:?}",
            m.notes
        );
    }

    #[test]
    fn fills_unknown_pairs_and_averages_directions() {
        let text = "x,a,b,c\na,0,10,\nb,12,0,5\nc,,5,0\n";
        let m = parse("m.csv", text).unwrap();
        assert_eq!(m.rtt(0, 1), Duration::from_millis(11));
        assert_eq!(m.rtt(0, 2), Duration::from_millis(16)); // a-b-c
        assert!(!m.is_measured(0, 2));
        assert_eq!(m.one_way(1, 2), Duration::from_micros(2_500));
        let numeric = parse("n.csv", "0,4\n4,0\n").unwrap();
        assert_eq!(numeric.names(), &["h0", "h1"]);
    }

    #[test]
    fn errors_name_line_column_and_hosts() {
        let cases = [
            ("", "the file is empty"),
            ("x,a,b\na,0,1\n", "2 hosts are named but 1 rows follow"),
            ("x,a,b\na,0,1\nc,1,0\n", "line 3: row 2 is named \"c\""),
            (
                "x,a,b\na,0,1\nb,fast,0\n",
                "line 3, column 2: RTT from b to a is \"fast\"",
            ),
            ("x,a,b\na,0,-3\nb,1,0\n", "RTT from a to b is \"-3\""),
            ("x,a,b\na,0\nb,1,0\n", "line 2: expected 2 values, found 1"),
            ("x,a,b,c\na,0,1,\nb,1,0,\nc,,,0\n", "no measured path"),
        ];
        for (text, expected) in cases {
            let err = parse("m.csv", text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(err.starts_with("m.csv: "), "{err}");
        }
    }
}
