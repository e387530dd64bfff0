//! Figures for print: each SVG also as a PNG at 300 dpi and as a vector PDF, for LaTeX. Both
//! render the same SVG with the same font (resvg / svg2pdf over one usvg tree), so the three
//! files show the same figure.

use std::sync::Arc;

use resvg::tiny_skia;
use resvg::usvg;

/// Print resolution of the PNGs.
pub const PNG_DPI: f32 = 300.0;
/// The SVGs' own resolution: CSS px, 96 to the inch (so 13.7 px type is 10.3 pt in the PDF).
const SVG_DPI: f32 = 96.0;
/// Sans fonts the figures may be set in, in order of preference; the first installed one
/// stands in for the SVGs' generic `sans-serif`.
const SANS: [&str; 6] = [
    "DejaVu Sans",
    "Liberation Sans",
    "Noto Sans",
    "Arial",
    "Helvetica",
    "FreeSans",
];

/// One of the figure files `probe report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Svg,
    Png,
    Pdf,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Svg, Format::Png, Format::Pdf];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
            Format::Pdf => "pdf",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "svg" => Ok(Format::Svg),
            "png" => Ok(Format::Png),
            "pdf" => Ok(Format::Pdf),
            other => Err(format!(
                "unknown figure format `{other}` (known: svg, png, pdf)"
            )),
        }
    }
}

/// Renders SVG figures to PNG and PDF with the system's sans font, loaded once.
pub struct Printer {
    options: usvg::Options<'static>,
    /// The font standing in for `sans-serif`.
    pub font: String,
}

impl Printer {
    /// Loads the installed fonts; an error names what to install when there is no sans font
    /// (a figure without its text would be silent garbage).
    pub fn new() -> Result<Self, String> {
        let mut options = usvg::Options::default();
        let db = Arc::make_mut(&mut options.fontdb);
        db.load_system_fonts();
        let installed = |family: &str| {
            db.faces().any(|f| {
                f.families
                    .iter()
                    .any(|(name, _)| name.eq_ignore_ascii_case(family))
            })
        };
        let Some(font) = SANS.iter().find(|f| installed(f)) else {
            return Err(format!(
                "PNG and PDF figures need a sans-serif font, and none of {} is installed (Debian/Ubuntu: apt install fonts-dejavu-core); or give --format svg",
                SANS.join(", ")
            ));
        };
        db.set_sans_serif_family(*font);
        Ok(Printer {
            font: font.to_string(),
            options,
        })
    }

    fn tree(&self, svg: &str) -> Result<usvg::Tree, String> {
        usvg::Tree::from_str(svg, &self.options).map_err(|e| format!("reading the SVG: {e}"))
    }

    /// The figure as a PNG at [`PNG_DPI`] on white, with its resolution recorded (pHYs), so
    /// LaTeX and word processors place it at the SVG's physical size.
    pub fn png(&self, svg: &str) -> Result<Vec<u8>, String> {
        let tree = self.tree(svg)?;
        let scale = PNG_DPI / SVG_DPI;
        let size = tree.size();
        let (w, h) = (
            (size.width() * scale).ceil() as u32,
            (size.height() * scale).ceil() as u32,
        );
        // bounded: the widest figure is 1,100 px (3,438 px here); a tall grid stays < 20,000
        if w == 0 || h == 0 || w > 20_000 || h > 40_000 {
            return Err(format!("a {w} × {h} px image is out of range"));
        }
        let mut pixmap =
            tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("no {w} × {h} px canvas"))?;
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(scale, scale),
            &mut pixmap.as_mut(),
        );
        // opaque everywhere (white underneath): premultiplied RGBA is plain RGB plus 255
        let rgb: Vec<u8> = pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let per_metre = (PNG_DPI / 0.0254).round() as u32;
            encoder.set_pixel_dims(Some(png::PixelDimensions {
                xppu: per_metre,
                yppu: per_metre,
                unit: png::Unit::Meter,
            }));
            let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
            writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// The figure as a one-page vector PDF at the SVG's physical size, text embedded as text.
    pub fn pdf(&self, svg: &str) -> Result<Vec<u8>, String> {
        let tree = self.tree(svg)?;
        svg2pdf::to_pdf(
            &tree,
            svg2pdf::ConversionOptions::default(),
            svg2pdf::PageOptions { dpi: SVG_DPI },
        )
        .map_err(|e| format!("writing the PDF: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVG: &str = r##"<svg width="200" height="100" viewBox="0 0 200 100" xmlns="http://www.w3.org/2000/svg">
<rect x="0" y="0" width="200" height="100" fill="#FFFFFF"/>
<rect x="0" y="0" width="100" height="100" fill="#332288"/>
<text x="150" y="50" font-family="sans-serif" font-size="40" fill="#000000">Ab</text>
</svg>"##;

    /// The PNG is 300 dpi (pixels and pHYs) and draws the SVG's shapes and its text; the PDF
    /// is one page at the SVG's physical size with the text embedded as text.
    #[test]
    fn png_and_pdf_show_the_svg_at_print_size() {
        let printer = match Printer::new() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("notice: skipping PNG/PDF rendering: {e}");
                return;
            }
        };
        let png = printer.png(SVG).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().unwrap();
        let info = reader.info();
        // 200 × 100 CSS px at 300/96
        assert_eq!((info.width, info.height), (625, 313));
        let dims = info.pixel_dims.unwrap();
        assert_eq!((dims.xppu, dims.unit), (11_811, png::Unit::Meter));
        let mut pixels = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut pixels).unwrap();
        assert_eq!(frame.color_type, png::ColorType::Rgb);
        let at = |x: usize, y: usize| {
            let i = (y * 625 + x) * 3;
            [pixels[i], pixels[i + 1], pixels[i + 2]]
        };
        assert_eq!(
            at(100, 150),
            [0x33, 0x22, 0x88],
            "the left half is the fill"
        );
        // the text "Ab" in the right half: dark pixels where a missing font leaves white
        let ink = (320..625)
            .flat_map(|x| (0..313).map(move |y| (x, y)))
            .filter(|&(x, y)| at(x, y)[0] < 100)
            .count();
        assert!(ink > 1000, "{ink} dark pixels: the text was not drawn");
        let pdf = printer.pdf(SVG).unwrap();
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.starts_with("%PDF-"));
        assert_eq!(text.matches("/Type /Page\n").count(), 1, "one page");
        // 200 × 100 px at 96 dpi = 150 × 75 pt
        assert!(
            text.contains("/MediaBox [0 0 150 75]"),
            "{}",
            &text[..text.len().min(2000)]
        );
        assert!(text.contains("/FontFile2"), "the font is embedded");
    }

    #[test]
    fn formats_parse_with_a_clear_error() {
        assert_eq!("PNG".parse::<Format>(), Ok(Format::Png));
        let e = "jpeg".parse::<Format>().unwrap_err();
        assert!(e.contains("svg, png, pdf"), "{e}");
    }
}
