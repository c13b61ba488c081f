//! Draws the load test's req/s per scheme as an SVG bar chart.
//!
//! Usage: `plot RESULTS.csv OUT.svg [TITLE]`, where the CSV is what `benches/load.sh --csv`
//! writes: a header line, then `route,req_per_s,p50_ms,p99_ms,ratio_to_none` per route. Each bar
//! is labelled with its req/s and its ratio to `/none`; the no-auth baseline is grey, portcullis
//! blue and the peer red.

use std::error::Error;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One route's row of the CSV.
struct Row {
    route: String,
    req_per_s: f64,
    ratio: f64,
}

const BASELINE: RGBColor = RGBColor(150, 150, 150);
const PORTCULLIS: RGBColor = RGBColor(45, 105, 175);
const PEER: RGBColor = RGBColor(200, 70, 60);

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (csv, out, title) = match args.as_slice() {
        [csv, out] => (csv, out, "req/s per scheme"),
        [csv, out, title] => (csv, out, title.as_str()),
        _ => return Err("usage: plot RESULTS.csv OUT.svg [TITLE]".into()),
    };
    let rows = read(&std::fs::read_to_string(csv)?)?;
    draw(&rows, out, title)?;
    println!("wrote {out}");
    Ok(())
}

fn read(csv: &str) -> Result<Vec<Row>, Box<dyn Error>> {
    let mut rows = Vec::new();
    for (number, line) in csv.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [route, req_per_s, _p50, _p99, ratio] = fields.as_slice() else {
            return Err(format!("line {}: expected 5 fields: {line}", number + 1).into());
        };
        rows.push(Row {
            route: (*route).to_owned(),
            req_per_s: req_per_s.parse()?,
            ratio: ratio.parse()?,
        });
    }
    if rows.is_empty() {
        return Err("the CSV has no rows".into());
    }
    Ok(rows)
}

fn draw(rows: &[Row], out: &str, title: &str) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::new(out, (960, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let top = rows.iter().map(|r| r.req_per_s).fold(0.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(72)
        // A discrete range includes its end: `0..n - 1` is n segments.
        .build_cartesian_2d((0..rows.len() - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_max_light_lines(1)
        .x_labels(rows.len())
        .x_label_formatter(&|value| match value {
            SegmentValue::CenterOf(i) => rows.get(*i).map_or(String::new(), |r| r.route.clone()),
            _ => String::new(),
        })
        .y_desc("requests per second")
        .y_label_formatter(&|value| format!("{value:.0}"))
        .draw()?;
    chart.draw_series(rows.iter().enumerate().map(|(i, row)| {
        let color = match row.route.as_str() {
            "/none" => BASELINE,
            route if route.starts_with("/peer") => PEER,
            _ => PORTCULLIS,
        };
        let mut bar = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), row.req_per_s),
            ],
            color.filled(),
        );
        bar.set_margin(0, 0, 10, 10);
        bar
    }))?;
    let label = TextStyle::from(("sans-serif", 13).into_font())
        .pos(Pos::new(HPos::Center, VPos::Bottom))
        .color(&BLACK);
    chart.draw_series(rows.iter().enumerate().map(|(i, row)| {
        Text::new(
            format!("{:.0} ({:.2}×)", row.req_per_s, row.ratio),
            (SegmentValue::CenterOf(i), row.req_per_s),
            label.clone(),
        )
    }))?;
    root.present()?;
    Ok(())
}
