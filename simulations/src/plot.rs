//! SVG charts drawn with `plotters` (SVG backend, line series): commit
//! latency over time (p50 and p99 per time bucket) and the latency CDF.

use plotters::prelude::*;

use crate::report::Percentiles;

const SIZE: (u32, u32) = (720, 400);
const COLOURS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// One named series of `(x, y)` points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Where a chart's legend goes: in the upper right over headroom above the
/// data (lines that stay level), or in the lower right (a rising CDF).
#[derive(Clone, Copy, Debug)]
pub enum Legend {
    UpperRight,
    LowerRight,
}

/// A line chart with axes, a grid and a legend, as an SVG document. The y
/// axis starts at 0; the x axis spans the points.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    legend: Legend,
    series: &[Series<'_>],
) -> Result<String, String> {
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for (x, y) in series.iter().flat_map(|s| s.points.iter()) {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y1 = y1.max(*y);
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let (headroom, position) = match legend {
        Legend::UpperRight => (1.3, SeriesLabelPosition::UpperRight),
        Legend::LowerRight => (1.05, SeriesLabelPosition::LowerRight),
    };
    let y1 = if y1 > 0.0 { y1 * headroom } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, 0.0..y1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, s) in series.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A tick label: whole numbers from 10 up, else at most two decimals.
fn tick(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Latency over time: per time bucket (1/60 of the span, at least 100 ms),
/// the p50 and p99 of the items committed in it. `samples` are
/// `(commit ms, latency ms)`; x is in seconds.
pub fn latency_over_time(title: &str, samples: &[(f64, f64)]) -> Result<String, String> {
    let mut sorted: Vec<(f64, f64)> = samples.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let span = sorted.last().map_or(1.0, |l| l.0) - sorted.first().map_or(0.0, |f| f.0);
    let bucket = (span / 60.0).max(100.0);
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    let mut k = 0;
    while k < sorted.len() {
        let start = (sorted[k].0 / bucket).floor();
        let mut latencies = Vec::new();
        while k < sorted.len() && (sorted[k].0 / bucket).floor() == start {
            latencies.push(sorted[k].1);
            k += 1;
        }
        let p = Percentiles::of(&mut latencies);
        let x = (start + 0.5) * bucket / 1_000.0;
        p50.push((x, p.p50));
        p99.push((x, p.p99));
    }
    line_chart(
        title,
        "virtual time (s)",
        "commit latency (ms)",
        Legend::UpperRight,
        &[
            Series {
                name: "p50",
                points: p50,
            },
            Series {
                name: "p99",
                points: p99,
            },
        ],
    )
}

/// The CDF of latencies (ms), at most about 400 points.
pub fn latency_cdf(title: &str, latencies: &[f64]) -> Result<String, String> {
    let mut v = latencies.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len().max(1) as f64;
    let step = (v.len() / 400).max(1);
    let mut points: Vec<(f64, f64)> = v
        .iter()
        .enumerate()
        .step_by(step)
        .map(|(i, l)| (*l, (i + 1) as f64 / n))
        .collect();
    if let Some(last) = v.last() {
        points.push((*last, 1.0));
    }
    line_chart(
        title,
        "commit latency (ms)",
        "fraction of items",
        Legend::LowerRight,
        &[Series {
            name: "CDF",
            points,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_a_line_and_the_titles() {
        let samples: Vec<(f64, f64)> = (0..500)
            .map(|i| (i as f64 * 20.0, 100.0 + (i % 17) as f64))
            .collect();
        let over_time = latency_over_time("over & <time>", &samples).unwrap();
        assert!(over_time.starts_with("<svg"), "{}", &over_time[..80]);
        assert!(over_time.trim_end().ends_with("</svg>"));
        assert!(over_time.contains("<polyline"));
        assert!(over_time.contains("over &amp; &lt;time&gt;"));
        let latencies: Vec<f64> = samples.iter().map(|s| s.1).collect();
        let cdf = latency_cdf("cdf", &latencies).unwrap();
        assert!(cdf.starts_with("<svg") && cdf.contains("<polyline"));
        assert!(cdf.contains("fraction of items"));
        assert_eq!(
            [tick(1000.0), tick(12.5), tick(0.1), tick(0.0), tick(2.25)],
            ["1000", "12", "0.1", "0", "2.25"]
        );
        // No data: still a chart (axes, no line points).
        assert!(latency_cdf("empty", &[]).unwrap().starts_with("<svg"));
    }
}
