//! The reliability diagram: how often the model is right against how sure it says it is.

use std::io;
use std::path::Path;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{draw_title, font, text_of, width_for, Area, Drawn, Picture};
use super::{GRID, INK, LABEL_SIZE, MARGIN, MUTED, TOP};
use crate::calibration::Reliability;

/// Writes a reliability diagram as a PNG: for each curve, the accuracy of each confidence bin
/// against the bin's mean confidence, as points joined by lines, over the diagonal of perfect
/// calibration; under it, a strip with the number of samples in each bin; a legend with each
/// curve's name and ECE, and `title` on top. Empty bins are left out. Up to four curves (e.g.
/// before and after calibration) get distinct colours; further ones are not drawn.
pub fn write_reliability_png(
    curves: &[(&str, &Reliability)],
    path: &Path,
    title: &str,
) -> io::Result<()> {
    render(curves, title)?.0.write_png(path)
}

/// Curve colours, matplotlib's first four (tab10: blue, orange, green, red).
const CURVES: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
];
/// Grid lines at the tenths.
const FAINT: RGBColor = RGBColor(236, 238, 241);
/// Sizes in pixels.
const PLOT: u32 = 540;
const STRIP_H: u32 = 72;
const Y_LABELS_W: u32 = 110;
const X_LABELS_H: u32 = 2 * LABEL_SIZE + 24;
const MARKER: i32 = 5;

/// The legend lines of the curves drawn: `name: ECE 0.031`.
fn legend(curves: &[(&str, &Reliability)]) -> Vec<String> {
    curves
        .iter()
        .take(CURVES.len())
        .map(|(name, r)| match r.n {
            0 => format!("{name}: no samples"),
            _ => format!("{name}: ECE {:.3}", r.ece),
        })
        .collect()
}

/// Confidence (x) and accuracy (y), or confidence and count in the strip.
type Axes = Cartesian2d<RangedCoordf64, RangedCoordf64>;

/// The picture and the coordinates of the diagram (for the tests).
fn render(curves: &[(&str, &Reliability)], title: &str) -> io::Result<(Picture, Axes)> {
    let curves = &curves[..curves.len().min(CURVES.len())];
    let plot_w = Y_LABELS_W + PLOT;
    let width = width_for(plot_w, title);
    let height = TOP + PLOT + 14 + STRIP_H + X_LABELS_H + MARGIN;
    let mut axes = None;
    let picture = Picture::draw(width, height, |root| {
        draw_title(root, title)?;
        let left = (width - plot_w) / 2;
        let area = root.margin(TOP, MARGIN, left, width - left - plot_w);
        let (upper, lower) = area.split_vertically(PLOT + 14);
        axes = Some(draw_diagram(&upper, curves)?);
        draw_counts(&lower, curves)
    })?;
    let axes = axes.ok_or_else(|| io::Error::other("the reliability diagram was not drawn"))?;
    Ok((picture, axes))
}

/// A value for the axes: finite ones clamped to 0..=1, others left out.
fn unit(v: Option<f64>) -> Option<f64> {
    v.filter(|v| v.is_finite()).map(|v| v.clamp(0.0, 1.0))
}

/// The diagram: grid, diagonal, one curve per reliability, legend.
fn draw_diagram(area: &Area, curves: &[(&str, &Reliability)]) -> Result<Axes, String> {
    let mut chart = ChartBuilder::on(area)
        .margin_bottom(14)
        .y_label_area_size(Y_LABELS_W)
        .build_cartesian_2d(0f64..1f64, 0f64..1f64)
        .map_err(text_of)?;
    chart
        .configure_mesh()
        .x_labels(3)
        .y_labels(3)
        .max_light_lines(4)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| format!("{v}"))
        .bold_line_style(GRID)
        .light_line_style(FAINT)
        .axis_style(MUTED)
        .label_style(font(LABEL_SIZE, INK))
        .axis_desc_style(font(LABEL_SIZE, MUTED))
        .y_desc("accuracy")
        .draw()
        .map_err(text_of)?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            MUTED.stroke_width(2),
        ))
        .map_err(text_of)?;
    let marker =
        |colour: RGBColor| Rectangle::new([(-MARKER, -MARKER), (MARKER, MARKER)], colour.filled());
    for ((_, r), (colour, text)) in curves.iter().zip(CURVES.into_iter().zip(legend(curves))) {
        let points: Vec<(f64, f64)> = r
            .bins
            .iter()
            .filter_map(|b| Some((unit(b.confidence)?, unit(b.accuracy)?)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(3)))
            .map_err(text_of)?
            .label(text)
            .legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new([(-14, 0), (14, 0)], colour.stroke_width(3))
                    + marker(colour)
            });
        let halo = MARKER + 2;
        chart
            .draw_series(points.into_iter().map(|p| {
                EmptyElement::at(p)
                    + Rectangle::new([(-halo, -halo), (halo, halo)], WHITE.filled())
                    + marker(colour)
            }))
            .map_err(text_of)?;
    }
    if !curves.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(12)
            .legend_area_size(40)
            .label_font(font(LABEL_SIZE, INK))
            .background_style(WHITE)
            .border_style(GRID)
            .draw()
            .map_err(text_of)?;
    }
    Ok(chart.as_coord_spec().clone())
}

/// The strip under the diagram: each bin's count, the curves' side by side, scaled to the
/// largest; the confidence axis's labels.
fn draw_counts(area: &Area, curves: &[(&str, &Reliability)]) -> Drawn {
    let most = curves
        .iter()
        .flat_map(|(_, r)| &r.bins)
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let mut strip = ChartBuilder::on(area)
        .x_label_area_size(X_LABELS_H)
        .y_label_area_size(Y_LABELS_W)
        .build_cartesian_2d(0f64..1f64, 0f64..most * 1.05)
        .map_err(text_of)?;
    strip
        .configure_mesh()
        .disable_mesh()
        .x_labels(3)
        .y_labels(0)
        .x_label_formatter(&|v| format!("{v}"))
        .axis_style(MUTED)
        .label_style(font(LABEL_SIZE, INK))
        .axis_desc_style(font(LABEL_SIZE, MUTED))
        .x_desc("confidence")
        .y_desc("count")
        .draw()
        .map_err(text_of)?;
    let slots = curves.len().max(1) as f64;
    for (k, (_, r)) in curves.iter().enumerate() {
        let bars = r.bins.iter().filter(|b| b.count > 0).filter_map(|b| {
            let (lower, upper) = (unit(Some(b.lower))?, unit(Some(b.upper))?);
            let slot = (upper - lower).max(0.0) * 0.9 / slots;
            let x0 = lower + (upper - lower) * 0.05 + k as f64 * slot;
            let bar = [(x0, 0.0), (x0 + slot, b.count as f64)];
            Some(Rectangle::new(bar, CURVES[k].filled()))
        });
        strip.draw_series(bars).map_err(text_of)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_png_holds;
    use super::*;
    use crate::labels::Emotion;

    #[test]
    fn reliability_png_round_trips_with_the_curves_in_colour() {
        use Emotion::*;
        // Over-confident: confidence 0.95 and 0.75, accuracy 1/2 and 1/4.
        let mut probs = vec![[0.95, 0.0125, 0.0125, 0.0125, 0.0125]; 4];
        probs.extend([[0.75, 0.1, 0.05, 0.05, 0.05]; 4]);
        let truth = [
            Anger, Sadness, Anger, Neutral, Anger, Surprise, Surprise, Neutral,
        ];
        let before = Reliability::of(&probs, &truth, 10);
        // Calibrated: confidence 0.5, accuracy 1/2 (on the diagonal).
        let after = Reliability::of(
            &[[0.5, 0.2, 0.1, 0.1, 0.1]; 4],
            &[Anger, Neutral, Anger, Sadness],
            10,
        );
        assert!(before.ece > 0.3 && after.ece.abs() < 1e-6);
        let curves = [("window", &before), ("window, calibrated", &after)];
        let title = "Reliability (eGeMAPS, 5 folds)";

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reliability.png");
        write_reliability_png(&curves, &path, title).unwrap();
        let (expected, axes) = render(&curves, title).unwrap();
        assert_png_holds(&path, &expected);
        assert_eq!(
            legend(&curves),
            ["window: ECE 0.475", "window, calibrated: ECE 0.000"]
        );

        // The plot is PLOT pixels square; markers at (confidence, accuracy) in each curve's
        // colour, the diagonal in grey, white where nothing is drawn.
        let (x0, y1) = axes.translate(&(0.0, 0.0));
        let (x1, y0) = axes.translate(&(1.0, 1.0));
        assert!((x1 - x0 - PLOT as i32).abs() <= 1 && (y1 - y0 - PLOT as i32).abs() <= 1);
        let at = |conf: f64, acc: f64| expected.pixel(axes.translate(&(conf, acc)));
        assert_eq!(at(0.95, 0.5), CURVES[0]);
        assert_eq!(at(0.75, 0.25), CURVES[0]);
        assert_eq!(at(0.85, 0.375), CURVES[0]); // the line between them
        assert_eq!(at(0.5, 0.5), CURVES[1]);
        assert_eq!(at(0.25, 0.25), MUTED);
        assert_eq!(at(0.35, 0.15), WHITE);
        let colours: std::collections::HashSet<(u8, u8, u8)> = expected
            .rgb
            .chunks_exact(3)
            .map(|p| (p[0], p[1], p[2]))
            .collect();
        assert!(colours.contains(&CURVES[0].rgb()) && colours.contains(&CURVES[1].rgb()));
        assert!(!colours.contains(&CURVES[2].rgb()));
        // Count bars in the strip under the plot, in the curve colours.
        let (x, _) = axes.translate(&(0.92, 0.0));
        let strip = y1 + 14..y1 + 14 + STRIP_H as i32;
        assert!(strip.clone().any(|y| expected.pixel((x, y)) == CURVES[0]));
        let (x, _) = axes.translate(&(0.2, 0.0));
        assert!(strip.into_iter().all(|y| expected.pixel((x, y)) == WHITE));

        // No samples, no curves, too many curves, odd values: still a picture.
        let empty = Reliability::of(&[], &[], 10);
        let mut odd = before.clone();
        odd.bins[9].confidence = Some(f64::NAN);
        odd.bins[7].accuracy = Some(7.0);
        odd.bins[9].lower = 2.0;
        odd.bins[9].upper = -1.0;
        for curves in [
            vec![("empty", &empty)],
            vec![],
            vec![
                ("a", &before),
                ("b", &after),
                ("c", &empty),
                ("d", &odd),
                ("e", &before),
            ],
        ] {
            let picture = render(&curves, "").unwrap().0;
            let (w, h) = (picture.width as usize, picture.height as usize);
            assert_eq!(picture.rgb.len(), w * h * 3);
        }
        assert_eq!(super::legend(&[("empty", &empty)]), ["empty: no samples"]);
    }
}
