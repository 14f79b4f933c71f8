//! `skyfleet simulate --out DIR`: every step of every strategy as CSV, and one SVG plot of
//! demand, capacity and cost over time, so a total in the report can be traced to the hours
//! that made it. The replay itself stays pure; this is the only part that writes files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::report::{Report, Step};
use super::strategy::Strategy;

/// The plot's file name inside the output directory.
pub const PLOT: &str = "simulate.svg";

/// Why the output files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The cause follows in the error chain.
    #[error("--out: cannot write {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing {path}: {message}")]
    Plot { path: PathBuf, message: String },
}

/// Writes `<strategy>.csv` per strategy and [`PLOT`] into `dir`, creating it if missing.
/// `cpu` is one replica's CPU request in cores. Returns the files written.
pub fn write_all(dir: &Path, report: &Report, cpu: f64) -> Result<Vec<PathBuf>, OutputError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut written = Vec::new();
    for s in Strategy::ALL {
        let Some(steps) = report.steps.get(s.name()) else {
            continue;
        };
        let path = dir.join(format!("{}.csv", s.name()));
        std::fs::write(&path, csv(&report.pools, steps, cpu)).map_err(io(&path))?;
        written.push(path);
    }
    let path = dir.join(PLOT);
    let plot = svg(report).map_err(|message| OutputError::Plot {
        path: path.clone(),
        message,
    })?;
    std::fs::write(&path, plot).map_err(io(&path))?;
    written.push(path);
    Ok(written)
}

/// One strategy's steps as CSV: a header, then one row per step. `ready_replicas × cpu` is
/// `capacity_cores`, what is ready at the step's start; where replicas finish their startup
/// within the step, `later_capacity_cores` is ready from `later_from_s` seconds into it (both
/// empty otherwise), and `unmet_cores` averages the shortfall over both. The
/// `replicas_<pool>` columns add up to `replicas`.
pub fn csv(pools: &[String], steps: &[Step], cpu: f64) -> String {
    let mut out = String::from(
        "offset_s,demand_cores,sized_for_cores,capacity_cores,ready_replicas,later_from_s,\
         later_capacity_cores,replicas",
    );
    for p in pools {
        out += ",replicas_";
        out += p;
    }
    for p in pools {
        out += ",desired_";
        out += p;
    }
    out += ",cost_per_hour,unmet_cores,moves\n";
    for s in steps {
        let ready = if cpu > 0.0 {
            (s.capacity() / cpu).round() as u64
        } else {
            0
        };
        let sized = s.sized_for.map(|c| format!("{c:.4}")).unwrap_or_default();
        let (later_from, later_capacity) = s
            .later()
            .map(|l| (l.from.to_string(), format!("{:.4}", l.capacity)))
            .unwrap_or_default();
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{},{:.4},{},{:.4},{},{},{},{}",
            s.offset,
            s.demand,
            sized,
            s.capacity(),
            ready,
            later_from,
            later_capacity,
            s.total_replicas()
        );
        for n in s.replicas.iter().chain(&s.desired) {
            let _ = write!(out, ",{n}");
        }
        let _ = writeln!(out, ",{:.6},{:.4},{}", s.cost_per_hour, s.unmet, s.moves);
    }
    out
}

/// The colour of a strategy's lines, the same in both charts.
fn colour(s: Strategy) -> RGBColor {
    match s {
        Strategy::Skyfleet => RGBColor(31, 119, 180),
        Strategy::StaticPeak => RGBColor(127, 127, 127),
        Strategy::Reactive => RGBColor(255, 127, 14),
        Strategy::Oracle => RGBColor(44, 160, 44),
    }
}

/// One panel of the plot: hours since the start of the trace across, `y_desc` up, from 0 to
/// `(span, y_max)`.
fn panel<'a, 'b>(
    area: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    y_desc: &str,
    (span, y_max): (f64, f64),
    x_label: &dyn Fn(&f64) -> String,
) -> Result<
    ChartContext<
        'a,
        SVGBackend<'b>,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span, 0.0..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_label_formatter(x_label)
        .x_desc("hours since the start of the trace")
        .y_desc(y_desc)
        .draw()
        .map_err(|e| e.to_string())?;
    Ok(chart)
}

/// The plot: demand and each strategy's ready capacity (cores) on top, each strategy's cost
/// per hour below, both over hours since the start of the trace. Text is left to the SVG
/// viewer's fonts (no font files are read).
pub fn svg(report: &Report) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let series: Vec<(Strategy, &Vec<Step>)> = Strategy::ALL
        .iter()
        .filter_map(|&s| report.steps.get(s.name()).map(|steps| (s, steps)))
        .collect();
    let hours = |s: &Step| s.offset as f64 / 3600.0;
    let demand: Vec<(f64, f64)> = series
        .first()
        .map(|(_, steps)| steps.iter().map(|s| (hours(s), s.demand)).collect())
        .unwrap_or_default();
    let span = series
        .iter()
        .flat_map(|(_, steps)| steps.last().map(hours))
        .fold(0.0, f64::max)
        .max(1.0 / 60.0);
    let all = || series.iter().flat_map(|(_, steps)| steps.iter());
    let top_max = all()
        .map(|s| s.demand.max(s.capacity()))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let cost_max = all().map(|s| s.cost_per_hour).fold(0.0, f64::max).max(1e-3) * 1.05;
    let x_label = |x: &f64| {
        if span >= 10.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    };

    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (1200, 900)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let (upper, lower) = root.split_vertically(500);

        let mut chart = panel(
            &upper,
            "Demand and ready capacity",
            "cores",
            (span, top_max),
            &x_label,
        )?;
        for (s, steps) in &series {
            let c = colour(*s);
            chart
                .draw_series(LineSeries::new(
                    steps.iter().map(|st| (hours(st), st.capacity())),
                    c,
                ))
                .map_err(|e| err(&e))?
                .label(format!("{} capacity", s.name()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        // Demand last, so no capacity line hides it.
        chart
            .draw_series(LineSeries::new(demand, BLACK.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label("demand")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;

        let mut chart = panel(
            &lower,
            "Cost per hour",
            "cost per hour",
            (span, cost_max),
            &x_label,
        )?;
        for (s, steps) in &series {
            let c = colour(*s);
            chart
                .draw_series(LineSeries::new(
                    steps.iter().map(|st| (hours(st), st.cost_per_hour)),
                    c,
                ))
                .map_err(|e| err(&e))?
                .label(s.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::super::report::Ready;
    use super::*;

    fn step(offset: u64, demand: f64, replicas: Vec<u32>, ready: u32) -> Step {
        Step {
            offset,
            demand,
            sized_for: Some(demand),
            ready: vec![Ready {
                from: 0,
                capacity: f64::from(ready) * 0.5,
            }],
            cost_per_hour: f64::from(replicas.iter().sum::<u32>()) * 0.1,
            unmet: (demand - f64::from(ready) * 0.5).max(0.0),
            desired: replicas.clone(),
            replicas,
            moves: 0,
        }
    }

    #[test]
    fn the_csv_has_a_column_per_pool_and_a_row_per_step() {
        let pools = vec!["a".to_string(), "b".to_string()];
        let mut rising = step(300, 2.0, vec![3, 2], 3);
        rising.ready.push(Ready {
            from: 180,
            capacity: 2.5,
        });
        rising.unmet = 0.2;
        let steps = vec![step(0, 1.0, vec![2, 1], 3), rising];
        let text = csv(&pools, &steps, 0.5);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "offset_s,demand_cores,sized_for_cores,capacity_cores,ready_replicas,later_from_s,\
             later_capacity_cores,replicas,replicas_a,replicas_b,desired_a,desired_b,\
             cost_per_hour,unmet_cores,moves"
        );
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "0,1.0000,1.0000,1.5000,3,,,3,2,1,2,1,0.300000,0.0000,0"
        );
        assert_eq!(
            lines[2],
            "300,2.0000,2.0000,1.5000,3,180,2.5000,5,3,2,3,2,0.500000,0.2000,0"
        );
    }

    #[test]
    fn the_plot_draws_demand_and_a_line_per_strategy_in_each_chart() {
        let mut report = Report::default();
        for s in Strategy::ALL {
            report.steps.insert(
                s.name(),
                vec![step(0, 1.0, vec![2], 2), step(3600, 2.0, vec![4], 4)],
            );
        }
        let text = svg(&report).unwrap();
        assert!(text.starts_with("<svg"), "{}", &text[..80.min(text.len())]);
        assert!(text.trim_end().ends_with("</svg>"));
        // Demand, then four capacities, then four costs (legend samples are polylines too).
        assert!(text.matches("<polyline").count() >= 9, "{text}");
        for label in ["demand", "skyfleet capacity", "oracle", "Cost per hour"] {
            assert!(text.contains(label), "{label} in the plot");
        }
    }
}
