//! SVG plots with plotters: CDFs and grouped bar charts.

use std::path::Path;

use plotters::prelude::*;

use super::ReportError;

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One curve of a CDF plot: a label and its samples.
#[derive(Debug, Clone)]
pub struct Curve<'a> {
    /// Legend text.
    pub label: &'a str,
    /// Samples (any order).
    pub samples: &'a [f64],
}

/// Grouped bars: one group per category, one bar per series.
#[derive(Debug, Clone)]
pub struct Bars<'a> {
    /// Category labels along the x axis.
    pub categories: Vec<String>,
    /// `(legend text, one value per category)`.
    pub series: Vec<(&'a str, Vec<f64>)>,
    /// Draw the y axis on a log scale.
    pub log_y: bool,
}

fn plot_error(path: &Path) -> impl Fn(String) -> ReportError + '_ {
    move |problem| ReportError::Plot {
        path: path.to_owned(),
        problem,
    }
}

/// Draw the empirical CDFs of `curves` to an SVG file.
pub fn plot_cdf(
    path: &Path,
    title: &str,
    x_label: &str,
    curves: &[Curve<'_>],
) -> Result<(), ReportError> {
    let err = plot_error(path);
    let all = curves
        .iter()
        .flat_map(|c| c.samples.iter().copied())
        .filter(|x| x.is_finite());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (lo, hi) = if lo.is_finite() {
        (lo.min(0.0), if hi > lo { hi * 1.05 } else { lo + 1.0 })
    } else {
        (0.0, 1.0)
    };
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(lo..hi, 0f64..1f64)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("fraction of samples ≤ x")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, curve) in curves.iter().enumerate() {
        let mut sorted: Vec<f64> = curve
            .samples
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .collect();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let mut points = vec![(lo, 0.0)];
        // At most about 2000 steps: a larger sample draws the same picture with a smaller file.
        let stride = sorted.len().div_ceil(1000).max(1);
        for (k, &x) in sorted.iter().enumerate() {
            if k % stride == 0 || k + 1 == sorted.len() {
                points.push((x, k as f64 / n));
                points.push((x, (k + 1) as f64 / n));
            }
        }
        points.push((hi, if sorted.is_empty() { 0.0 } else { 1.0 }));
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(curve.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Draw grouped bars to an SVG file.
pub fn plot_bars(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    bars: &Bars<'_>,
) -> Result<(), ReportError> {
    let err = plot_error(path);
    let groups = bars.categories.len().max(1);
    let max = bars
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let categories = bars.categories.clone();
    let label = move |x: &f64| {
        let i = x.floor();
        if (x - i - 0.5).abs() < 1e-6 && i >= 0.0 {
            categories.get(i as usize).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60);
    let width = 0.8 / bars.series.len().max(1) as f64;
    macro_rules! draw {
        ($chart:expr, $floor:expr) => {{
            let mut chart = $chart.map_err(|e| err(e.to_string()))?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .x_labels(groups * 2 + 1)
                .x_label_formatter(&label)
                .x_desc(x_label)
                .y_desc(y_label)
                .draw()
                .map_err(|e| err(e.to_string()))?;
            for (s, (name, values)) in bars.series.iter().enumerate() {
                let color = PALETTE[s % PALETTE.len()];
                let rects =
                    values
                        .iter()
                        .enumerate()
                        .filter(|(_, v)| **v > 0.0)
                        .map(move |(g, &v)| {
                            let x0 = g as f64 + 0.1 + s as f64 * width;
                            Rectangle::new([(x0, $floor), (x0 + width, v)], color.filled())
                        });
                chart
                    .draw_series(rects)
                    .map_err(|e| err(e.to_string()))?
                    .label(*name)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.filled())
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(e.to_string()))?;
        }};
    }
    if bars.log_y {
        draw!(
            builder.build_cartesian_2d(0f64..groups as f64, (0.5f64..max * 2.0).log_scale()),
            0.5
        );
    } else {
        draw!(
            builder.build_cartesian_2d(0f64..groups as f64, 0f64..max * 1.1),
            0.0
        );
    }
    root.present().map_err(|e| err(e.to_string()))
}

/// One line of a line plot: a label and its points.
#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// Legend text.
    pub label: &'a str,
    /// `(x, y)` points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// Draw lines to an SVG file.
pub fn plot_lines(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line<'_>],
) -> Result<(), ReportError> {
    let err = plot_error(path);
    let points = lines
        .iter()
        .flat_map(|l| l.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) =
        (f64::INFINITY, f64::NEG_INFINITY, 0.0f64, f64::NEG_INFINITY);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if !x0.is_finite() || x1 <= x0 {
        (x0, x1) = (0.0, 1.0);
    }
    if !y1.is_finite() || y1 <= y0 {
        y1 = y0 + 1.0;
    }
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0..y1 * 1.05)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, line) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_written_as_svg() {
        let dir = std::env::temp_dir().join(format!("plot-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cdf = dir.join("cdf.svg");
        plot_cdf(
            &cdf,
            "t",
            "x",
            &[
                Curve {
                    label: "a",
                    samples: &[1.0, 2.0, 3.0],
                },
                Curve {
                    label: "b",
                    samples: &[],
                },
            ],
        )
        .unwrap();
        let bars = dir.join("bars.svg");
        let spec = Bars {
            categories: vec!["1".into(), "2-3".into()],
            series: vec![("u", vec![10.0, 1.0]), ("m", vec![5.0, 0.0])],
            log_y: true,
        };
        plot_bars(&bars, "t", "x", "y", &spec).unwrap();
        for file in [cdf, bars] {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(
                text.starts_with("<svg") && text.contains("</svg>"),
                "{}",
                file.display()
            );
        }
    }
}
