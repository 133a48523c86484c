//! Hand-written SVG charts (a polyline per series): commit latency over
//! time and its CDF. No plotting dependency.

use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One named series of `(x, y)` points.
pub struct Series<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A line chart with axes, ticks and a legend.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series<'_>]) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0.0f64);
    for (x, y) in pts {
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
    let y1 = nice(y1.max(1e-9));
    let px = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let py = |y: f64| H - BOTTOM - y / y1 * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    for k in 0..=5 {
        let y = y1 * k as f64 / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{1:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{2}" y="{3:.1}" text-anchor="end">{4}</text>"##,
            W - RIGHT,
            py(y),
            LEFT - 6.0,
            py(y) + 4.0,
            fmt_num(y)
        );
        let x = x0 + (x1 - x0) * k as f64 / 5.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(x),
            H - BOTTOM + 18.0,
            fmt_num(x)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{0}" stroke="black"/><line x1="{LEFT}" x2="{1}" y1="{0}" y2="{0}" stroke="black"/>"#,
        H - BOTTOM,
        W - RIGHT
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 10.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{0}" text-anchor="middle" transform="rotate(-90 16 {0})">{1}</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        esc(y_label)
    );
    for (k, series) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let mut points = String::new();
        for (x, y) in &series.points {
            let _ = write!(points, "{:.1},{:.1} ", px(*x), py(*y));
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            points.trim_end()
        );
        let ly = TOP + 14.0 + 16.0 * k as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="{colour}" stroke-width="2"/><text x="{3}" y="{4}">{5}</text>"#,
            LEFT + 12.0,
            LEFT + 32.0,
            ly,
            LEFT + 38.0,
            ly + 4.0,
            esc(series.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Latency over time: per time bucket, the p50 and p99 of the items
/// committed in it. `samples` are `(commit ms, latency ms)`.
pub fn latency_over_time(title: &str, samples: &[(f64, f64)]) -> String {
    let mut sorted: Vec<(f64, f64)> = samples.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let span = sorted.last().map_or(1.0, |l| l.0) - sorted.first().map_or(0.0, |f| f.0);
    let bucket = (span / 60.0).max(100.0);
    let (mut p50, mut p99) = (Vec::new(), Vec::new());
    let mut k = 0;
    while k < sorted.len() {
        let start = (sorted[k].0 / bucket).floor();
        let mut lat = Vec::new();
        while k < sorted.len() && (sorted[k].0 / bucket).floor() == start {
            lat.push(sorted[k].1);
            k += 1;
        }
        let p = crate::report::Percentiles::of(&mut lat);
        let x = (start + 0.5) * bucket / 1_000.0;
        p50.push((x, p.p50));
        p99.push((x, p.p99));
    }
    line_chart(
        title,
        "virtual time (s)",
        "commit latency (ms)",
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

/// The CDF of latencies (ms).
pub fn latency_cdf(title: &str, latencies: &[f64]) -> String {
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
        &[Series {
            name: "CDF",
            points,
        }],
    )
}

fn nice(max: f64) -> f64 {
    let mag = 10f64.powf(max.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if max <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_num(x: f64) -> String {
    if x.abs() >= 100.0 || x == x.round() {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
