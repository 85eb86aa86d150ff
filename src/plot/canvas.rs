//! A small raster canvas written as PNG, and the 5×7 pixel font its text is drawn in (ASCII
//! letters, digits and common punctuation; other characters show as `?`), so that no system
//! fonts are needed.

use std::io;
use std::path::Path;

pub(super) type Rgb = [u8; 3];

pub(super) fn write_png(canvas: &Canvas, path: &Path) -> io::Result<()> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, canvas.width as u32, canvas.height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&canvas.rgb)?;
    writer.finish()?;
    std::fs::write(path, bytes)
}

/// An RGB image, 8 bits per channel, rows top to bottom.
pub(super) struct Canvas {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) rgb: Vec<u8>,
}

impl Canvas {
    pub(super) fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            rgb: vec![255; width * height * 3],
        }
    }

    #[cfg(test)]
    pub(super) fn pixel(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.width + x) * 3;
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Fills a rectangle, clipped to the image.
    pub(super) fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, color: Rgb) {
        for yy in y..(y + h).min(self.height) {
            for xx in x..(x + w).min(self.width) {
                let i = (yy * self.width + xx) * 3;
                self.rgb[i..i + 3].copy_from_slice(&color);
            }
        }
    }

    pub(super) fn outline(&mut self, x: usize, y: usize, w: usize, h: usize, color: Rgb) {
        self.fill(x, y, w, 1, color);
        self.fill(x, y + h - 1, w, 1, color);
        self.fill(x, y, 1, h, color);
        self.fill(x + w - 1, y, 1, h, color);
    }

    /// Fills a `size`×`size` square centred on (x, y), clipped to the image.
    pub(super) fn square(&mut self, (x, y): (usize, usize), size: usize, color: Rgb) {
        let half = size / 2;
        self.fill(
            x.saturating_sub(half),
            y.saturating_sub(half),
            size,
            size,
            color,
        );
    }

    /// Draws a line `width` pixels thick from `from` to `to`, clipped to the image.
    pub(super) fn line(
        &mut self,
        from: (usize, usize),
        to: (usize, usize),
        width: usize,
        color: Rgb,
    ) {
        let (dx, dy) = (to.0 as f64 - from.0 as f64, to.1 as f64 - from.1 as f64);
        let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as usize;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (from.0 as f64 + t * dx).round() as usize;
            let y = (from.1 as f64 + t * dy).round() as usize;
            self.square((x, y), width, color);
        }
    }

    /// Draws `text` with its top-left corner at (x, y).
    pub(super) fn text(&mut self, x: usize, y: usize, text: &str, scale: usize, color: Rgb) {
        for (i, ch) in text.chars().enumerate() {
            let gx = x + i * ADVANCE * scale;
            for (row, bits) in glyph(ch).into_iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits & (1 << (GLYPH_W - 1 - col)) != 0 {
                        self.fill(gx + col * scale, y + row * scale, scale, scale, color);
                    }
                }
            }
        }
    }

    pub(super) fn text_centred(
        &mut self,
        centre_x: usize,
        y: usize,
        text: &str,
        scale: usize,
        color: Rgb,
    ) {
        let x = centre_x.saturating_sub(text_width(text, scale) / 2);
        self.text(x, y, text, scale, color);
    }

    pub(super) fn text_right(
        &mut self,
        right_x: usize,
        y: usize,
        text: &str,
        scale: usize,
        color: Rgb,
    ) {
        self.text(
            right_x.saturating_sub(text_width(text, scale)),
            y,
            text,
            scale,
            color,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5×7 bitmap font, after the HD44780 character LCD's, with true descenders. Each glyph is seven
// rows of five pixels down to the baseline, top to bottom, `#` = ink, plus two rows below the
// baseline for the letters that descend (g, j, p, q, y, comma, semicolon).

pub(super) const GLYPH_W: usize = 5;
/// Rows down to the baseline, the height used for placing text.
pub(super) const GLYPH_H: usize = 7;
/// Rows below the baseline.
pub(super) const DESCENT: usize = 2;
/// Glyph width plus one column of spacing.
pub(super) const ADVANCE: usize = GLYPH_W + 1;

/// Height of text down to the baseline.
pub(super) fn glyph_h(scale: usize) -> usize {
    GLYPH_H * scale
}

pub(super) fn text_width(text: &str, scale: usize) -> usize {
    (text.chars().count() * ADVANCE).saturating_sub(1) * scale
}

/// The rows of `ch`'s glyph, bit 4 = leftmost pixel; `?` for characters the font lacks.
pub(super) fn glyph(ch: char) -> [u8; GLYPH_H + DESCENT] {
    let pattern = FONT
        .iter()
        .find(|(c, _)| *c == ch)
        .or_else(|| FONT.iter().find(|(c, _)| *c == '?'));
    let mut rows = [0u8; GLYPH_H + DESCENT];
    if let Some((_, pattern)) = pattern {
        for (row, bits) in rows.iter_mut().zip(pattern.split(' ')) {
            *row = bits
                .bytes()
                .fold(0, |acc, b| acc << 1 | u8::from(b == b'#'));
        }
    }
    rows
}

#[rustfmt::skip]
pub(super) const FONT: &[(char, &str)] = &[
    (' ', "..... ..... ..... ..... ..... ..... ....."),
    ('0', ".###. #...# #..## #.#.# ##..# #...# .###."),
    ('1', "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###."),
    ('2', ".###. #...# ....# ...#. ..#.. .#... #####"),
    ('3', "##### ...#. ..#.. ...#. ....# #...# .###."),
    ('4', "...#. ..##. .#.#. #..#. ##### ...#. ...#."),
    ('5', "##### #.... ####. ....# ....# #...# .###."),
    ('6', "..##. .#... #.... ####. #...# #...# .###."),
    ('7', "##### ....# ...#. ..#.. .#... .#... .#..."),
    ('8', ".###. #...# #...# .###. #...# #...# .###."),
    ('9', ".###. #...# #...# .#### ....# ...#. .##.."),
    ('A', ".###. #...# #...# #...# ##### #...# #...#"),
    ('B', "####. #...# #...# ####. #...# #...# ####."),
    ('C', ".###. #...# #.... #.... #.... #...# .###."),
    ('D', "###.. #..#. #...# #...# #...# #..#. ###.."),
    ('E', "##### #.... #.... ####. #.... #.... #####"),
    ('F', "##### #.... #.... ####. #.... #.... #...."),
    ('G', ".###. #...# #.... #.### #...# #...# .####"),
    ('H', "#...# #...# #...# ##### #...# #...# #...#"),
    ('I', ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
    ('J', "..### ...#. ...#. ...#. ...#. #..#. .##.."),
    ('K', "#...# #..#. #.#.. ##... #.#.. #..#. #...#"),
    ('L', "#.... #.... #.... #.... #.... #.... #####"),
    ('M', "#...# ##.## #.#.# #.#.# #...# #...# #...#"),
    ('N', "#...# #...# ##..# #.#.# #..## #...# #...#"),
    ('O', ".###. #...# #...# #...# #...# #...# .###."),
    ('P', "####. #...# #...# ####. #.... #.... #...."),
    ('Q', ".###. #...# #...# #...# #.#.# #..#. .##.#"),
    ('R', "####. #...# #...# ####. #.#.. #..#. #...#"),
    ('S', ".#### #.... #.... .###. ....# ....# ####."),
    ('T', "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#.."),
    ('U', "#...# #...# #...# #...# #...# #...# .###."),
    ('V', "#...# #...# #...# #...# #...# .#.#. ..#.."),
    ('W', "#...# #...# #...# #.#.# #.#.# #.#.# .#.#."),
    ('X', "#...# #...# .#.#. ..#.. .#.#. #...# #...#"),
    ('Y', "#...# #...# #...# .#.#. ..#.. ..#.. ..#.."),
    ('Z', "##### ....# ...#. ..#.. .#... #.... #####"),
    ('a', "..... ..... .###. ....# .#### #...# .####"),
    ('b', "#.... #.... #.##. ##..# #...# #...# ####."),
    ('c', "..... ..... .###. #.... #.... #...# .###."),
    ('d', "....# ....# .##.# #..## #...# #...# .####"),
    ('e', "..... ..... .###. #...# ##### #.... .###."),
    ('f', "..##. .#..# .#... ###.. .#... .#... .#..."),
    ('g', "..... ..... .#### #...# #...# #...# .#### ....# .###."),
    ('h', "#.... #.... #.##. ##..# #...# #...# #...#"),
    ('i', "..#.. ..... .##.. ..#.. ..#.. ..#.. .###."),
    ('j', "...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##.."),
    ('k', "#.... #.... #..#. #.#.. ##... #.#.. #..#."),
    ('l', ".##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###."),
    ('m', "..... ..... ##.#. #.#.# #.#.# #...# #...#"),
    ('n', "..... ..... #.##. ##..# #...# #...# #...#"),
    ('o', "..... ..... .###. #...# #...# #...# .###."),
    ('p', "..... ..... ####. #...# #...# #...# ####. #.... #...."),
    ('q', "..... ..... .#### #...# #...# #...# .#### ....# ....#"),
    ('r', "..... ..... #.##. ##..# #.... #.... #...."),
    ('s', "..... ..... .###. #.... .###. ....# ####."),
    ('t', ".#... .#... ###.. .#... .#... .#..# ..##."),
    ('u', "..... ..... #...# #...# #...# #..## .##.#"),
    ('v', "..... ..... #...# #...# #...# .#.#. ..#.."),
    ('w', "..... ..... #...# #...# #.#.# #.#.# .#.#."),
    ('x', "..... ..... #...# .#.#. ..#.. .#.#. #...#"),
    ('y', "..... ..... #...# #...# #...# #...# .#### ....# .###."),
    ('z', "..... ..... ##### ...#. ..#.. .#... #####"),
    ('%', "##..# ##..# ...#. ..#.. .#... #..## #..##"),
    ('.', "..... ..... ..... ..... ..... .##.. .##.."),
    (',', "..... ..... ..... ..... ..... .##.. .##.. ..#.. .#..."),
    (':', "..... .##.. .##.. ..... .##.. .##.. ....."),
    (';', "..... ..... .##.. .##.. ..... .##.. .##.. ..#.. .#..."),
    ('-', "..... ..... ..... ##### ..... ..... ....."),
    ('+', "..... ..#.. ..#.. ##### ..#.. ..#.. ....."),
    ('=', "..... ..... ##### ..... ##### ..... ....."),
    ('_', "..... ..... ..... ..... ..... ..... #####"),
    ('/', "..... ....# ...#. ..#.. .#... #.... ....."),
    ('\\', "..... #.... .#... ..#.. ...#. ....# ....."),
    ('(', "...#. ..#.. .#... .#... .#... ..#.. ...#."),
    (')', ".#... ..#.. ...#. ...#. ...#. ..#.. .#..."),
    ('[', ".###. .#... .#... .#... .#... .#... .###."),
    (']', ".###. ...#. ...#. ...#. ...#. ...#. .###."),
    ('#', ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#."),
    ('\'', ".##.. ..#.. .#... ..... ..... ..... ....."),
    ('"', ".#.#. .#.#. ..... ..... ..... ..... ....."),
    ('!', "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#.."),
    ('?', ".###. #...# ....# ...#. ..#.. ..... ..#.."),
    ('<', "...#. ..#.. .#... #.... .#... ..#.. ...#."),
    ('>', ".#... ..#.. ...#. ....# ...#. ..#.. .#..."),
    ('*', "..... ..#.. #.#.# .###. #.#.# ..#.. ....."),
    ('&', ".##.. #..#. #.#.. .#... #.#.# #..#. .##.#"),
    ('±', "..#.. ..#.. ##### ..#.. ..#.. ..... #####"),
    ('×', "..... #...# .#.#. ..#.. .#.#. #...# ....."),
];
