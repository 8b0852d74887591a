//! The bench's chart: each mode's p50 per workload as grouped bars on a log-scale ms axis,
//! native's p50 marked across each group as the baseline, written as SVG.

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Availability, Mode, Report, WORKLOADS};

/// The chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// plotters could not draw or write the file.
    #[error("cannot draw the chart {}: {message}", path.display())]
    Draw {
        /// The chart file.
        path: PathBuf,
        /// plotters' reason.
        message: String,
    },
    /// No cell of the report has samples.
    #[error("no cell of the report has samples: nothing to chart")]
    Empty,
}

/// Pixel size of the chart.
const SIZE: (u32, u32) = (1100, 620);

fn colour(mode: Mode) -> RGBColor {
    match mode {
        Mode::Native => RGBColor(150, 150, 150),
        Mode::NativeIsolated => RGBColor(100, 100, 100),
        Mode::NativeNearest => RGBColor(60, 60, 60),
        Mode::Wasm => RGBColor(31, 119, 180),
        Mode::WasmEpoch => RGBColor(120, 180, 230),
        Mode::WasmReady => RGBColor(23, 190, 207),
        Mode::WasmCli => RGBColor(44, 160, 44),
        Mode::Container => RGBColor(255, 127, 14),
        Mode::ContainerPool => RGBColor(214, 39, 40),
        Mode::Serve => RGBColor(148, 103, 189),
        Mode::ServeContainer => RGBColor(140, 86, 75),
    }
}

/// Writes the chart of `report` to `path` as SVG.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), ChartError> {
    let fail = |err: &dyn std::fmt::Display| ChartError::Draw {
        path: path.to_owned(),
        message: err.to_string(),
    };
    let p50s: Vec<f64> = report.cells.iter().filter_map(|cell| cell.p50_ms).collect();
    let (Some(low), Some(high)) = (
        p50s.iter().copied().reduce(f64::min),
        p50s.iter().copied().reduce(f64::max),
    ) else {
        return Err(ChartError::Empty);
    };
    // Whole decades, with headroom above the tallest bar for its ratio label.
    let floor = 10f64.powf((low * 0.8).log10().floor());
    let ceiling = 10f64.powf((high * 3.0).log10().ceil());
    let modes = report.modes();
    let groups = WORKLOADS.len();
    let bar_width = 0.8 / modes.len() as f64;

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let caption = format!(
        "stratbox bench: p50 wall time per run, {} runs per cell",
        report.runs
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(64)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..groups as f64, (floor..ceiling).log_scale())
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups + 1)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|ms| {
            if *ms >= 1.0 {
                format!("{ms:.0}")
            } else {
                format!("{ms}")
            }
        })
        .y_desc("p50 wall time per run (ms, log scale)")
        .x_desc("workload")
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| fail(&e))?;

    let small = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (slot, &mode) in modes.iter().enumerate() {
        let fill = colour(mode);
        let mut bars = Vec::new();
        let mut notes = Vec::new();
        for (group, workload) in WORKLOADS.iter().enumerate() {
            let Some(cell) = report.cell(workload.name, mode) else {
                continue;
            };
            let left = group as f64 + 0.1 + slot as f64 * bar_width;
            let centre = left + bar_width / 2.0;
            match (&cell.availability, cell.p50_ms) {
                (Availability::Available, Some(p50)) => {
                    bars.push(Rectangle::new(
                        [(left + 0.01, floor), (left + bar_width - 0.01, p50)],
                        fill.filled(),
                    ));
                    let note = match (mode, cell.ratio_to_native) {
                        (Mode::Native, _) | (_, None) => format!("{p50:.0} ms"),
                        (_, Some(ratio)) => format!("×{ratio:.2}"),
                    };
                    notes.push(Text::new(note, (centre, p50 * 1.08), small.clone()));
                }
                (Availability::Available, None) | (Availability::Unavailable(_), _) => {
                    notes.push(Text::new(
                        "n/a".to_owned(),
                        (centre, floor * 1.3),
                        small.clone(),
                    ));
                }
            }
        }
        chart
            .draw_series(bars)
            .map_err(|e| fail(&e))?
            .label(mode.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], fill.filled()));
        chart.draw_series(notes).map_err(|e| fail(&e))?;
    }

    // The baseline: native's p50 as a dashed line across each workload's group.
    let mut dashes = Vec::new();
    for (group, workload) in WORKLOADS.iter().enumerate() {
        let Some(native) = report
            .cell(workload.name, Mode::Native)
            .and_then(|cell| cell.p50_ms)
        else {
            continue;
        };
        let mut x = group as f64 + 0.04;
        while x < group as f64 + 0.96 {
            dashes.push(PathElement::new(
                vec![(x, native), ((x + 0.02).min(group as f64 + 0.96), native)],
                BLACK.stroke_width(2),
            ));
            x += 0.035;
        }
    }
    chart
        .draw_series(dashes)
        .map_err(|e| fail(&e))?
        .label("native p50 (baseline)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLACK.stroke_width(2)));

    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;

    // Workload names under each group.
    let name_style = ("sans-serif", 16)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (group, workload) in WORKLOADS.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(group as f64 + 0.5, floor));
        root.draw(&Text::new(workload.name, (x, y + 8), name_style.clone()))
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}
