//! Pictures of the figures, as PNG files: the confusion matrix ([`write_confusion_png`]) and
//! the reliability diagram ([`write_reliability_png`]).
//!
//! They are drawn with plotters on an RGB bitmap and encoded with `png`. Text is set in DejaVu
//! Sans, cut down to ASCII and Latin-1 and embedded in the binary (`vendor/dejavu`, 32 KB), so
//! that the pictures look the same everywhere and no system fonts are needed; other characters
//! show as the font's empty box.

mod confusion;
mod reliability;

use std::io;
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

pub use confusion::write_confusion_png;
pub use reliability::write_reliability_png;

/// The family name the embedded font is registered under: plotters' default, so that text
/// whose style is not set (say, in a legend) is drawn in it too.
const FONT: &str = "sans-serif";

/// Makes the embedded font known to plotters. plotters looks a font up when a style is made, so
/// [`font`] calls this first.
fn register_the_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bytes: &'static [u8] = include_bytes!("../../vendor/dejavu/DejaVuSans-subset.ttf");
        // Were the bytes not a font, drawing text would fail with plotters' font error (an
        // `io::Error` for the caller, never a panic); the tests draw with it.
        let _ = register_font(FONT, FontStyle::Normal, bytes);
    });
}

/// Text in the embedded font: `size` is the line height in pixels.
fn font(size: u32, colour: RGBColor) -> TextStyle<'static> {
    register_the_font();
    (FONT, size).into_font().color(&colour)
}

const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(134, 142, 150);
const GRID: RGBColor = RGBColor(208, 212, 218);
const TITLE_SIZE: u32 = 30;
const LABEL_SIZE: u32 = 22;
const MARGIN: u32 = 28;
/// Where the content starts, under the title.
const TOP: u32 = MARGIN + TITLE_SIZE + 20;

/// A drawing area in pixel coordinates.
type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// An RGB image, 8 bits per channel, rows top to bottom.
struct Picture {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Picture {
    /// Draws on a white picture of `width`×`height` pixels with `draw`.
    fn draw(width: u32, height: u32, draw: impl FnOnce(&Area) -> Drawn) -> io::Result<Picture> {
        let mut rgb = vec![255; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
            draw(&root).map_err(io::Error::other)?;
            root.present().map_err(text_of).map_err(io::Error::other)?;
        }
        Ok(Picture { width, height, rgb })
    }

    #[cfg(test)]
    fn pixel(&self, (x, y): (i32, i32)) -> RGBColor {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        RGBColor(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
    }

    fn write_png(&self, path: &Path) -> io::Result<()> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgb)?;
        writer.finish()?;
        std::fs::write(path, bytes)
    }
}

/// What a drawing function returns: plotters' errors, as text.
type Drawn = Result<(), String>;

/// Turns plotters' error type into text for [`Drawn`].
fn text_of<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The width in pixels of `text` in `style` (0 if the font cannot say).
fn text_width(text: &str, style: &TextStyle) -> u32 {
    style
        .font
        .box_size(text)
        .map(|(w, _)| w)
        .unwrap_or_default()
}

/// The width of a picture whose content is `content` pixels wide: wider for a long title, which
/// is never cut off.
fn width_for(content: u32, title: &str) -> u32 {
    let title_w = text_width(title, &font(TITLE_SIZE, INK));
    content.max(title_w) + 2 * MARGIN
}

/// Draws `title` centred at the top of `root`.
fn draw_title(root: &Area, title: &str) -> Drawn {
    let (width, _) = root.dim_in_pixel();
    let style = font(TITLE_SIZE, INK).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(title, &style, (width as i32 / 2, MARGIN as i32))
        .map_err(text_of)
}

/// Relative luminance, 0 (black) to 1 (white), of an sRGB colour (Rec. 709 weights).
fn luminance(c: RGBColor) -> f64 {
    (0.2126 * c.0 as f64 + 0.7152 * c.1 as f64 + 0.0722 * c.2 as f64) / 255.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that the PNG at `path` is 8-bit RGB and holds exactly `expected`'s pixels.
    pub(super) fn assert_png_holds(path: &Path, expected: &Picture) {
        let decoder = png::Decoder::new(io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        assert_eq!(
            (info.color_type, info.bit_depth),
            (png::ColorType::Rgb, png::BitDepth::Eight)
        );
        assert_eq!((info.width, info.height), (expected.width, expected.height));
        assert_eq!(buf, expected.rgb);
    }

    #[test]
    fn the_embedded_font_has_what_the_pictures_write() {
        let style = font(LABEL_SIZE, INK);
        // Every glyph the figures use has ink, and a wider text measures wider.
        for ch in "0123456789%.:-,()| accuracy UAR n predicted true confidence count ECE"
            .chars()
            .chain('a'..='z')
            .chain('A'..='Z')
        {
            let text = ch.to_string();
            let w = text_width(&text, &style);
            assert!(ch == ' ' || w > 0, "{ch:?} has no width");
        }
        assert!(text_width("happiness", &style) > text_width("sad", &style));
        // Drawn text leaves ink: a word on a white picture darkens some pixels.
        let picture = Picture::draw(200, 60, |root| {
            root.draw_text("surprise", &style, (10, 10))
                .map_err(text_of)
        })
        .unwrap();
        let inked = picture.rgb.chunks_exact(3).filter(|p| p[0] < 128).count();
        assert!(inked > 50, "{inked} dark pixels");
    }
}
