//! Pictures of the figures: the confusion matrix and the reliability diagram, as PNG files.

mod canvas;

use std::io;
use std::path::Path;

use crate::calibration::Reliability;
use crate::labels::Emotion;
use crate::metrics::{percent, ratio, Confusion};
use canvas::*;

const K: usize = Emotion::COUNT;
// ---------------------------------------------------------------------------------------------
// Confusion-matrix picture

/// Writes a picture of `confusion` as a PNG: a heatmap whose rows are normalised to the true
/// class (colour and percentage = share of that class's samples, so the diagonal shows each
/// class's recall), each cell with its count, class names on both axes, `title` on top and
/// n, accuracy and UAR below.
///
/// Text is drawn with a built-in 5×7 pixel font (ASCII letters, digits and common punctuation;
/// other characters show as `?`), so no system fonts are needed.
pub fn write_confusion_png(confusion: &Confusion, path: &Path, title: &str) -> io::Result<()> {
    write_png(&render(confusion, title), path)
}

const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [33, 37, 41];
const MUTED: Rgb = [134, 142, 150];
const GRID: Rgb = [208, 212, 218];

/// ColorBrewer "Blues" (matplotlib's `Blues`), white to dark blue, evenly spaced stops.
const BLUES: [Rgb; 9] = [
    [247, 251, 255],
    [222, 235, 247],
    [198, 219, 239],
    [158, 202, 225],
    [107, 174, 214],
    [66, 146, 198],
    [33, 113, 181],
    [8, 81, 156],
    [8, 48, 107],
];

/// The ramp colour of a share in 0..=1.
fn ramp(share: f64) -> Rgb {
    let x = share.clamp(0.0, 1.0) * (BLUES.len() - 1) as f64;
    let i = (x.floor() as usize).min(BLUES.len() - 2);
    let t = x - i as f64;
    let (a, b) = (BLUES[i], BLUES[i + 1]);
    [0, 1, 2].map(|c| (a[c] as f64 + t * (b[c] as f64 - a[c] as f64)).round() as u8)
}

/// Relative luminance, 0 (black) to 1 (white), of an sRGB colour (Rec. 709 weights).
fn luminance(c: Rgb) -> f64 {
    (0.2126 * c[0] as f64 + 0.7152 * c[1] as f64 + 0.0722 * c[2] as f64) / 255.0
}

/// Dark text on light cells, white text on dark ones.
fn text_on(background: Rgb) -> Rgb {
    if luminance(background) > 0.55 {
        INK
    } else {
        WHITE
    }
}

// Sizes in pixels. Text scales multiply the 5×7 font: 3 → 15×21 glyphs, 2 → 10×14.
const MARGIN: usize = 28;
const CELL_W: usize = 132;
const CELL_H: usize = 84;
const TITLE_SCALE: usize = 3;
const COUNT_SCALE: usize = 3;
const LABEL_SCALE: usize = 2;
const BAR_W: usize = 18;

/// Where everything goes; shared by [`render`] and the tests.
struct Layout {
    width: usize,
    height: usize,
    title_y: usize,
    axis_y: usize,
    labels_y: usize,
    grid_x: usize,
    grid_y: usize,
    bar_x: usize,
    footer_y: usize,
}

impl Layout {
    fn new(title: &str, footer: &str) -> Layout {
        let label_w = Emotion::ALL
            .iter()
            .map(|e| text_width(e.name(), LABEL_SCALE))
            .max()
            .unwrap_or(0);
        let title_y = MARGIN;
        let axis_y = title_y + glyph_h(TITLE_SCALE) + 26;
        let labels_y = axis_y + glyph_h(LABEL_SCALE) + 18;
        let grid_x = MARGIN + label_w + 14;
        let grid_y = labels_y + glyph_h(LABEL_SCALE) + 12;
        let bar_x = grid_x + K * CELL_W + 24;
        let footer_y = grid_y + K * CELL_H + 20;
        let content_w = (bar_x + BAR_W + 8 + text_width("100%", LABEL_SCALE))
            .max(grid_x + text_width(footer, LABEL_SCALE));
        Layout {
            width: (content_w + MARGIN).max(text_width(title, TITLE_SCALE) + 2 * MARGIN),
            height: footer_y + glyph_h(LABEL_SCALE) + DESCENT * LABEL_SCALE + MARGIN,
            title_y,
            axis_y,
            labels_y,
            grid_x,
            grid_y,
            bar_x,
            footer_y,
        }
    }

    /// Top-left corner of the cell of (`truth`, `prediction`) indices.
    fn cell(&self, truth: usize, prediction: usize) -> (usize, usize) {
        (
            self.grid_x + prediction * CELL_W,
            self.grid_y + truth * CELL_H,
        )
    }
}

fn render(confusion: &Confusion, title: &str) -> Canvas {
    let footer = format!(
        "n {}    accuracy {}    UAR {}",
        confusion.n(),
        percent(confusion.accuracy()),
        percent(confusion.uar())
    );
    let l = Layout::new(title, &footer);
    let mut c = Canvas::new(l.width, l.height);
    let grid_w = K * CELL_W;
    let grid_h = K * CELL_H;

    c.text_centred(l.width / 2, l.title_y, title, TITLE_SCALE, INK);
    c.text_centred(
        l.grid_x + grid_w / 2,
        l.axis_y,
        "predicted",
        LABEL_SCALE,
        MUTED,
    );
    c.text_right(l.grid_x - 14, l.labels_y, "true", LABEL_SCALE, MUTED);
    for (i, e) in Emotion::ALL.iter().enumerate() {
        let (x, y) = l.cell(i, i);
        c.text_centred(x + CELL_W / 2, l.labels_y, e.name(), LABEL_SCALE, INK);
        let label_y = y + (CELL_H - glyph_h(LABEL_SCALE)) / 2;
        c.text_right(l.grid_x - 14, label_y, e.name(), LABEL_SCALE, INK);
    }

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
            let (x, y) = l.cell(t, p);
            c.fill(x, y, CELL_W, CELL_H, background);
            let block_h = glyph_h(COUNT_SCALE) + 10 + glyph_h(LABEL_SCALE);
            let top = y + (CELL_H - block_h) / 2;
            let count_text = count.to_string();
            // Eight digits and more would not fit at the count scale.
            let scale = if text_width(&count_text, COUNT_SCALE) + 8 > CELL_W {
                LABEL_SCALE
            } else {
                COUNT_SCALE
            };
            c.text_centred(x + CELL_W / 2, top, &count_text, scale, ink);
            if let Some(share) = share {
                let y2 = top + glyph_h(COUNT_SCALE) + 10;
                c.text_centred(
                    x + CELL_W / 2,
                    y2,
                    &format!("{:.1}%", 100.0 * share),
                    LABEL_SCALE,
                    ink,
                );
            }
        }
    }
    for i in 0..=K {
        c.fill(l.grid_x + i * CELL_W, l.grid_y, 1, grid_h + 1, GRID);
        c.fill(l.grid_x, l.grid_y + i * CELL_H, grid_w + 1, 1, GRID);
    }

    // Colour bar: share of the true class, 100% at the top.
    for dy in 0..grid_h {
        let share = 1.0 - dy as f64 / (grid_h - 1) as f64;
        c.fill(l.bar_x, l.grid_y + dy, BAR_W, 1, ramp(share));
    }
    c.outline(l.bar_x, l.grid_y, BAR_W, grid_h, GRID);
    let bar_label_x = l.bar_x + BAR_W + 8;
    c.text(bar_label_x, l.grid_y, "100%", LABEL_SCALE, INK);
    c.text(
        bar_label_x,
        l.grid_y + grid_h - glyph_h(LABEL_SCALE),
        "0%",
        LABEL_SCALE,
        INK,
    );

    c.text(l.grid_x, l.footer_y, &footer, LABEL_SCALE, INK);
    c
}

// ---------------------------------------------------------------------------------------------
// Reliability diagram

/// Writes a reliability diagram as a PNG: for each curve, the accuracy of each confidence bin
/// against the bin's mean confidence, as points joined by lines, over the diagonal of perfect
/// calibration; under it, a strip with the number of samples in each bin; below, a legend with
/// each curve's name and ECE, and `title` on top. Empty bins are left out. Up to four curves
/// (e.g. before and after calibration) get distinct colours; further ones are not drawn.
pub fn write_reliability_png(
    curves: &[(&str, &Reliability)],
    path: &Path,
    title: &str,
) -> io::Result<()> {
    write_png(&render_reliability(curves, title), path)
}

/// Curve colours, matplotlib's first four (tab10: blue, orange, green, red).
const CURVES: [Rgb; 4] = [[31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40]];
/// Grid lines at the bin edges.
const FAINT: Rgb = [236, 238, 241];
const PLOT: usize = 540;
const STRIP_H: usize = 72;
const MARKER: usize = 11;
const SWATCH_W: usize = 40;
const LEGEND_ROW: usize = 30;

/// Where the parts of the reliability diagram go; shared by [`render_reliability`] and the tests.
struct DiagramLayout {
    width: usize,
    height: usize,
    axis_y: usize,
    plot_x: usize,
    plot_y: usize,
    strip_y: usize,
    ticks_y: usize,
    x_label_y: usize,
    legend_y: usize,
}

impl DiagramLayout {
    fn new(title: &str, legend: &[String]) -> DiagramLayout {
        let axis_y = MARGIN + glyph_h(TITLE_SCALE) + 26;
        let plot_x = MARGIN + text_width("count", LABEL_SCALE) + 16;
        let plot_y = axis_y + glyph_h(LABEL_SCALE) + 16;
        let strip_y = plot_y + PLOT + 14;
        let ticks_y = strip_y + STRIP_H + 12;
        let x_label_y = ticks_y + glyph_h(LABEL_SCALE) + 14;
        let legend_y = x_label_y + glyph_h(LABEL_SCALE) + 30;
        let legend_w = legend
            .iter()
            .map(|s| SWATCH_W + 12 + text_width(s, LABEL_SCALE))
            .max()
            .unwrap_or(0);
        DiagramLayout {
            width: (plot_x + PLOT.max(legend_w) + MARGIN)
                .max(text_width(title, TITLE_SCALE) + 2 * MARGIN),
            height: legend_y + legend.len().max(1) * LEGEND_ROW + MARGIN,
            axis_y,
            plot_x,
            plot_y,
            strip_y,
            ticks_y,
            x_label_y,
            legend_y,
        }
    }

    /// The pixel of (confidence, accuracy) in the plot; values are clamped to 0..=1.
    fn point(&self, confidence: f64, accuracy: f64) -> (usize, usize) {
        let px = |v: f64| (v.clamp(0.0, 1.0) * (PLOT - 1) as f64).round() as usize;
        (
            self.plot_x + px(confidence),
            self.plot_y + PLOT - 1 - px(accuracy),
        )
    }
}

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

fn render_reliability(curves: &[(&str, &Reliability)], title: &str) -> Canvas {
    let curves = &curves[..curves.len().min(CURVES.len())];
    let legend = legend(curves);
    let l = DiagramLayout::new(title, &legend);
    let mut c = Canvas::new(l.width, l.height);
    c.text_centred(l.width / 2, MARGIN, title, TITLE_SCALE, INK);
    c.text(MARGIN, l.axis_y, "accuracy", LABEL_SCALE, MUTED);
    c.text_centred(
        l.plot_x + PLOT / 2,
        l.x_label_y,
        "confidence",
        LABEL_SCALE,
        MUTED,
    );
    let strip_mid = l.strip_y + (STRIP_H - glyph_h(LABEL_SCALE)) / 2;
    c.text_right(l.plot_x - 10, strip_mid, "count", LABEL_SCALE, MUTED);

    // Grid at the tenths, ticks and labels at 0, 0.5 and 1, the diagonal.
    for i in 0..=10 {
        let (x, y) = l.point(i as f64 / 10.0, i as f64 / 10.0);
        let colour = if i % 5 == 0 { GRID } else { FAINT };
        c.fill(x, l.plot_y, 1, PLOT, colour);
        c.fill(l.plot_x, y, PLOT, 1, colour);
    }
    for (v, label) in [(0.0, "0"), (0.5, "0.5"), (1.0, "1")] {
        let (x, y) = l.point(v, v);
        c.fill(x, l.strip_y + STRIP_H, 1, 6, MUTED);
        c.text_centred(x + 1, l.ticks_y, label, LABEL_SCALE, INK);
        c.fill(l.plot_x - 6, y, 6, 1, MUTED);
        let label_y = y.saturating_sub(glyph_h(LABEL_SCALE) / 2);
        c.text_right(l.plot_x - 10, label_y, label, LABEL_SCALE, INK);
    }
    c.outline(l.plot_x, l.plot_y, PLOT, PLOT, MUTED);
    c.outline(l.plot_x, l.strip_y, PLOT, STRIP_H, GRID);
    c.line(l.point(0.0, 0.0), l.point(1.0, 1.0), 2, MUTED);

    // Bin counts, side by side, scaled to the largest.
    let most = curves
        .iter()
        .flat_map(|(_, r)| &r.bins)
        .map(|b| b.count)
        .max()
        .unwrap_or(0)
        .max(1);
    for (k, (_, r)) in curves.iter().enumerate() {
        for b in r.bins.iter().filter(|b| b.count > 0) {
            let (x0, x1) = (l.point(b.lower, 0.0).0, l.point(b.upper, 0.0).0);
            let slot = x1.saturating_sub(x0 + 4) / curves.len();
            let h = (b.count as f64 / most as f64 * (STRIP_H - 4) as f64).round() as usize;
            let top = l.strip_y + STRIP_H - 1 - h.max(1);
            c.fill(
                x0 + 2 + k * slot,
                top,
                slot.saturating_sub(1).max(1),
                h.max(1),
                CURVES[k],
            );
        }
    }

    for (k, (_, r)) in curves.iter().enumerate() {
        let points: Vec<(usize, usize)> = r
            .bins
            .iter()
            .filter_map(|b| Some(l.point(b.confidence?, b.accuracy?)))
            .collect();
        for pair in points.windows(2) {
            c.line(pair[0], pair[1], 3, CURVES[k]);
        }
        for &p in &points {
            c.square(p, MARKER + 4, WHITE);
            c.square(p, MARKER, CURVES[k]);
        }
    }

    for (k, text) in legend.iter().enumerate() {
        let y = l.legend_y + k * LEGEND_ROW;
        let mid = y + glyph_h(LABEL_SCALE) / 2;
        c.line((l.plot_x, mid), (l.plot_x + SWATCH_W, mid), 3, CURVES[k]);
        c.square((l.plot_x + SWATCH_W / 2, mid), MARKER, CURVES[k]);
        c.text(l.plot_x + SWATCH_W + 12, y, text, LABEL_SCALE, INK);
    }
    c
}

#[cfg(test)]
mod tests {
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
    fn font_covers_what_the_picture_writes() {
        for (ch, pattern) in FONT {
            let rows: Vec<&str> = pattern.split(' ').collect();
            assert!([GLYPH_H, GLYPH_H + DESCENT].contains(&rows.len()), "{ch:?}");
            assert!(
                rows.iter()
                    .all(|r| r.len() == GLYPH_W && r.bytes().all(|b| b == b'#' || b == b'.')),
                "{ch:?}"
            );
        }
        let unknown = glyph('?');
        let text = "0123456789 %.:- accuracy UAR n predicted true anger surprise happiness sadness neutral";
        for ch in text
            .chars()
            .chain('a'..='z')
            .chain('A'..='Z')
            .filter(|&c| c != '?')
        {
            assert_ne!(glyph(ch), unknown, "{ch:?} has no glyph");
        }
        assert_eq!(glyph('€'), unknown);
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

        let decoder = png::Decoder::new(io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Eight)
        );
        let expected = render(&c, title);
        assert_eq!(
            (info.width as usize, info.height as usize),
            (expected.width, expected.height)
        );
        assert!(
            expected.width >= K * CELL_W + 2 * MARGIN && expected.height >= K * CELL_H + 2 * MARGIN
        );
        assert_eq!(&buf[..info.buffer_size()], &expected.rgb[..]);

        // Sample each cell just inside its corner, away from the text.
        let footer = format!(
            "n {}    accuracy {}    UAR {}",
            c.n(),
            percent(c.accuracy()),
            percent(c.uar())
        );
        let l = Layout::new(title, &footer);
        assert_eq!((l.width, l.height), (expected.width, expected.height));
        let at = |t, p| {
            let (x, y) = l.cell(t, p);
            expected.pixel(x + 3, y + 3)
        };
        let anger: Vec<f64> = (0..K).map(|p| luminance(at(0, p))).collect();
        assert!(anger.windows(2).all(|w| w[1] < w[0]), "{anger:?}");
        assert_eq!(at(1, 1), ramp(0.0));
        assert_eq!(at(3, 3), ramp(1.0));
        assert_eq!(at(2, 2), ramp(0.9));
        assert!(luminance(at(4, 4)) < luminance(at(2, 2)));

        // A long title widens the picture rather than being cut off.
        let long = "A very long title that is much wider than the confusion matrix itself, really";
        assert_eq!(
            render(&c, long).width,
            text_width(long, TITLE_SCALE) + 2 * MARGIN
        );
    }

    fn decode_png(path: &Path) -> (png::OutputInfo, Vec<u8>) {
        let decoder = png::Decoder::new(io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

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
        let (info, buf) = decode_png(&path);
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Eight)
        );
        let expected = render_reliability(&curves, title);
        assert_eq!(
            (info.width as usize, info.height as usize),
            (expected.width, expected.height)
        );
        assert_eq!(buf, expected.rgb);

        let legend = legend(&curves);
        assert_eq!(
            legend,
            ["window: ECE 0.475", "window, calibrated: ECE 0.000"]
        );
        let l = DiagramLayout::new(title, &legend);
        assert_eq!((l.width, l.height), (expected.width, expected.height));
        assert!(l.width >= PLOT + 2 * MARGIN && l.height >= PLOT + STRIP_H + 2 * MARGIN);
        // Markers at (confidence, accuracy) in each curve's colour, the diagonal in grey.
        let at = |conf: f64, acc: f64| {
            let (x, y) = l.point(conf, acc);
            expected.pixel(x, y)
        };
        assert_eq!(at(0.95, 0.5), CURVES[0]);
        assert_eq!(at(0.75, 0.25), CURVES[0]);
        assert_eq!(at(0.85, 0.375), CURVES[0]); // the line between them
        assert_eq!(at(0.5, 0.5), CURVES[1]);
        assert_eq!(at(0.25, 0.25), MUTED);
        assert_eq!(at(0.25, 0.75), WHITE);
        let colours: std::collections::HashSet<Rgb> = expected
            .rgb
            .chunks_exact(3)
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        assert!(colours.contains(&CURVES[0]) && colours.contains(&CURVES[1]));
        assert!(!colours.contains(&CURVES[2]));
        // Count bars in the strip, in the curve colours.
        let (x, _) = l.point(0.95, 0.0);
        assert!((l.strip_y..l.strip_y + STRIP_H).any(|y| expected.pixel(x - 4, y) == CURVES[0]));

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
            let canvas = render_reliability(&curves, "");
            assert_eq!(canvas.rgb.len(), canvas.width * canvas.height * 3);
        }
        assert_eq!(super::legend(&[("empty", &empty)]), ["empty: no samples"]);
    }
}
