//! The confusion matrix as a heatmap.

use std::io;
use std::path::Path;

use plotters::coord::ranged1d::{SegmentValue, SegmentedCoord};
use plotters::coord::types::RangedCoordusize;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{draw_title, font, luminance, text_of, text_width, width_for, Area, Drawn, Picture};
use super::{GRID, INK, LABEL_SIZE, MARGIN, MUTED, TOP};
use crate::labels::Emotion;
use crate::metrics::{percent, ratio, Confusion};

const K: usize = Emotion::COUNT;

/// Writes a picture of `confusion` as a PNG: a heatmap whose rows are normalised to the true
/// class (colour and percentage = share of that class's samples, so the diagonal shows each
/// class's recall), each cell with its count, class names on both axes, a colour bar, `title`
/// on top and n, accuracy and UAR below.
pub fn write_confusion_png(confusion: &Confusion, path: &Path, title: &str) -> io::Result<()> {
    render(confusion, title)?.0.write_png(path)
}

/// ColorBrewer "Blues" (matplotlib's `Blues`), white to dark blue, evenly spaced stops.
const BLUES: [RGBColor; 9] = [
    RGBColor(247, 251, 255),
    RGBColor(222, 235, 247),
    RGBColor(198, 219, 239),
    RGBColor(158, 202, 225),
    RGBColor(107, 174, 214),
    RGBColor(66, 146, 198),
    RGBColor(33, 113, 181),
    RGBColor(8, 81, 156),
    RGBColor(8, 48, 107),
];

/// The ramp colour of a share in 0..=1.
fn ramp(share: f64) -> RGBColor {
    let x = share.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (x.floor() as usize).min(BLUES.len() - 2);
    let t = x - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    let mix = |a: u8, b: u8| (a as f64 + t * (b as f64 - a as f64)).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Dark text on light cells, white text on dark ones.
fn text_on(background: RGBColor) -> RGBColor {
    if luminance(background) > 0.55 {
        INK
    } else {
        WHITE
    }
}

/// Sizes in pixels.
const CELL_W: u32 = 132;
const CELL_H: u32 = 84;
const COUNT_SIZE: u32 = 30;
const LABELS_W: u32 = 150;
const BAR_AREA_W: u32 = 100;
const BAR_W: u32 = 18;
const X_LABELS_H: u32 = 2 * LABEL_SIZE + 30;

/// The grid's coordinates: predicted class (x) and true class (y, the first class on top).
type Grid = Cartesian2d<SegmentedCoord<RangedCoordusize>, SegmentedCoord<RangedCoordusize>>;

/// The pixel rectangle of the cell of (`truth`, `prediction`) indices: top-left, bottom-right.
fn cell(grid: &Grid, truth: usize, prediction: usize) -> ((i32, i32), (i32, i32)) {
    let row = K - 1 - truth;
    (
        grid.translate(&(
            SegmentValue::Exact(prediction),
            SegmentValue::Exact(row + 1),
        )),
        grid.translate(&(
            SegmentValue::Exact(prediction + 1),
            SegmentValue::Exact(row),
        )),
    )
}

/// The picture and the grid's coordinates (for the tests).
fn render(confusion: &Confusion, title: &str) -> io::Result<(Picture, Grid)> {
    let footer = format!(
        "n {}    accuracy {}    UAR {}",
        confusion.n(),
        percent(confusion.accuracy()),
        percent(confusion.uar())
    );
    let plot_w = LABELS_W + K as u32 * CELL_W + BAR_AREA_W;
    let width = width_for(plot_w, title);
    let height = TOP + K as u32 * CELL_H + X_LABELS_H + LABEL_SIZE + 20 + MARGIN;
    let mut grid = None;
    let picture = Picture::draw(width, height, |root| {
        draw_title(root, title)?;
        let left = (width - plot_w) / 2;
        let footer_x = (left + LABELS_W + K as u32 * CELL_W / 2) as i32;
        let footer_y = (height - MARGIN - LABEL_SIZE) as i32;
        let below = font(LABEL_SIZE, INK).pos(Pos::new(HPos::Center, VPos::Top));
        root.draw_text(&footer, &below, (footer_x, footer_y))
            .map_err(text_of)?;
        let area = root.margin(TOP, LABEL_SIZE + 20 + MARGIN, left, left);
        let (matrix, bar) = area.split_horizontally(LABELS_W + K as u32 * CELL_W);
        let spec = draw_axes(&matrix)?;
        draw_cells(root, &spec, confusion)?;
        grid = Some(spec);
        colour_bar(&bar)
    })?;
    let grid = grid.ok_or_else(|| io::Error::other("the confusion matrix was not drawn"))?;
    Ok((picture, grid))
}

/// The class names on both axes and the axes' names; returns the grid's coordinates.
fn draw_axes(area: &Area) -> Result<Grid, String> {
    let name = |v: &SegmentValue<usize>, flip: bool| match *v {
        SegmentValue::CenterOf(i) if i < K => Emotion::ALL[if flip { K - 1 - i } else { i }]
            .name()
            .to_string(),
        _ => String::new(),
    };
    let x_name = |v: &SegmentValue<usize>| name(v, false);
    let y_name = |v: &SegmentValue<usize>| name(v, true);
    // K segments: plotters' discrete range includes its end.
    let mut chart = ChartBuilder::on(area)
        .x_label_area_size(X_LABELS_H)
        .y_label_area_size(LABELS_W)
        .build_cartesian_2d((0..K - 1).into_segmented(), (0..K - 1).into_segmented())
        .map_err(text_of)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(K)
        .y_labels(K)
        .x_label_formatter(&x_name)
        .y_label_formatter(&y_name)
        .label_style(font(LABEL_SIZE, INK))
        .axis_desc_style(font(LABEL_SIZE, MUTED))
        .x_desc("predicted")
        .y_desc("true")
        .axis_style(GRID)
        .draw()
        .map_err(text_of)?;
    Ok(chart.as_coord_spec().clone())
}

/// Each cell: its colour, its count and its share of the row.
fn draw_cells(root: &Area, grid: &Grid, confusion: &Confusion) -> Drawn {
    for (t, truth) in Emotion::ALL.into_iter().enumerate() {
        let support = confusion.support(truth);
        for p in 0..K {
            let count = confusion.counts()[t][p];
            let share = ratio(count, support);
            let background = ramp(share.unwrap_or(0.0));
            // Zeros in grey, so that the eye goes to the counts that matter.
            let ink = if count == 0 {
                MUTED
            } else {
                text_on(background)
            };
            let (a, b) = cell(grid, t, p);
            root.draw(&Rectangle::new([a, b], background.filled()))
                .map_err(text_of)?;
            root.draw(&Rectangle::new([a, b], GRID)).map_err(text_of)?;
            let mid = ((a.0 + b.0) / 2, (a.1 + b.1) / 2);
            let count_text = count.to_string();
            // Eight digits and more would not fit at the count size.
            let size = if text_width(&count_text, &font(COUNT_SIZE, ink)) + 8 > CELL_W {
                LABEL_SIZE
            } else {
                COUNT_SIZE
            };
            let centred = |size| font(size, ink).pos(Pos::new(HPos::Center, VPos::Center));
            let (count_y, share_y) = match share {
                Some(_) => (mid.1 - 12, mid.1 + 20),
                None => (mid.1, mid.1),
            };
            root.draw_text(&count_text, &centred(size), (mid.0, count_y))
                .map_err(text_of)?;
            if let Some(share) = share {
                let text = format!("{:.1}%", 100.0 * share);
                root.draw_text(&text, &centred(LABEL_SIZE), (mid.0, share_y))
                    .map_err(text_of)?;
            }
        }
    }
    Ok(())
}

/// The colour bar beside the grid: share of the true class, 100% at the top.
fn colour_bar(area: &Area) -> Drawn {
    let label = font(LABEL_SIZE, INK);
    let (_, h) = area.dim_in_pixel();
    let bar_h = (h - X_LABELS_H) as i32;
    let x = 24;
    for dy in 0..bar_h {
        let share = 1.0 - dy as f64 / (bar_h - 1) as f64;
        let colour = ramp(share).filled();
        area.draw(&Rectangle::new(
            [(x, dy), (x + BAR_W as i32, dy + 1)],
            colour,
        ))
        .map_err(text_of)?;
    }
    area.draw(&Rectangle::new([(x, 0), (x + BAR_W as i32, bar_h)], GRID))
        .map_err(text_of)?;
    let lx = x + BAR_W as i32 + 8;
    area.draw_text("100%", &label, (lx, 0)).map_err(text_of)?;
    let bottom = label.pos(Pos::new(HPos::Left, VPos::Bottom));
    area.draw_text("0%", &bottom, (lx, bar_h)).map_err(text_of)
}

#[cfg(test)]
mod tests {
    use super::super::tests::assert_png_holds;
    use super::super::TITLE_SIZE;
    use super::*;

    #[test]
    fn colour_ramp_darkens() {
        let lum: Vec<f64> = (0..=20).map(|i| luminance(ramp(i as f64 / 20.0))).collect();
        assert!(lum.windows(2).all(|w| w[1] < w[0]), "{lum:?}");
        assert_eq!(ramp(0.0), BLUES[0]);
        assert_eq!(ramp(1.0), BLUES[8]);
        assert_eq!(text_on(ramp(0.1)), INK);
        assert_eq!(text_on(ramp(0.9)), WHITE);
    }

    #[test]
    fn png_round_trips_and_cells_darken_with_share() {
        // The anger row has shares 1/15, 2/15, .., 5/15, the surprise row is empty.
        let c = Confusion::from_counts([
            [1, 2, 3, 4, 5],
            [0; K],
            [0, 0, 9, 1, 0],
            [0, 0, 0, 7, 0],
            [0, 2, 0, 0, 30],
        ]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("confusion.png");
        let title = "Test fold (eGeMAPS): 5 classes";
        write_confusion_png(&c, &path, title).unwrap();

        let (expected, grid) = render(&c, title).unwrap();
        assert_png_holds(&path, &expected);

        // Cells are CELL_W × CELL_H, in reading order; sample each just inside its corner,
        // away from the text.
        let ((x0, y0), (x1, y1)) = cell(&grid, 0, 0);
        assert!((x1 - x0 - CELL_W as i32).abs() <= 1 && (y1 - y0 - CELL_H as i32).abs() <= 1);
        assert!(cell(&grid, 1, 0).0 .1 > y0 && cell(&grid, 0, 1).0 .0 > x0);
        let at = |t, p| {
            let ((x, y), _) = cell(&grid, t, p);
            expected.pixel((x + 3, y + 3))
        };
        let anger: Vec<f64> = (0..K).map(|p| luminance(at(0, p))).collect();
        assert!(anger.windows(2).all(|w| w[1] < w[0]), "{anger:?}");
        assert_eq!(at(1, 1), ramp(0.0));
        assert_eq!(at(3, 3), ramp(1.0));
        assert_eq!(at(2, 2), ramp(0.9));
        assert!(luminance(at(4, 4)) < luminance(at(2, 2)));
        // Text in the cells: the dark diagonal cell of sadness has white ink, the light ones
        // dark ink.
        let inks = |t, p, pred: &dyn Fn(RGBColor) -> bool| {
            let ((x0, y0), (x1, y1)) = cell(&grid, t, p);
            (y0..y1)
                .flat_map(|y| (x0..x1).map(move |x| (x, y)))
                .filter(|&xy| pred(expected.pixel(xy)))
                .count()
        };
        assert!(inks(3, 3, &|c| c == WHITE) > 30);
        assert!(inks(0, 0, &|c| luminance(c) < 0.3) > 30);

        // A long title widens the picture rather than being cut off.
        let long = "A very long title that is much wider than the confusion matrix itself, really";
        let wide = render(&c, long).unwrap().0;
        assert_eq!(
            wide.width,
            text_width(long, &font(TITLE_SIZE, INK)) + 2 * MARGIN
        );
        assert!(wide.width > expected.width);
    }
}
