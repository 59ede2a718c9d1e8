//! QR images of URLs, as SVG or PNG, at a bounded size.

use qrcode::{Color, EcLevel, QrCode};

/// Smallest and largest image edge, in pixels.
pub const SIZE_RANGE: std::ops::RangeInclusive<u32> = 120..=1024;
/// Edge when none is asked for.
pub const DEFAULT_SIZE: u32 = 280;

/// Why an image could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The text does not fit in a QR code.
    #[error("the text is too long for a QR code")]
    TooLong,
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

fn code(text: &str) -> Result<QrCode, QrError> {
    // Medium error correction: survives a phone camera at an angle on a glossy screen.
    QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|_| QrError::TooLong)
}

/// An SVG image of `text`, `size` pixels wide (clamped to [`SIZE_RANGE`]).
pub fn svg(text: &str, size: u32) -> Result<String, QrError> {
    let size = size.clamp(*SIZE_RANGE.start(), *SIZE_RANGE.end());
    Ok(code(text)?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(size, size)
        .quiet_zone(true)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

/// A grayscale PNG of `text`, about `size` pixels wide (clamped; whole pixels per module).
pub fn png(text: &str, size: u32) -> Result<Vec<u8>, QrError> {
    let size = size.clamp(*SIZE_RANGE.start(), *SIZE_RANGE.end());
    let code = code(text)?;
    let modules = code.width() as u32;
    let quiet = 4;
    let total = modules + 2 * quiet;
    let scale = (size / total).max(1);
    let edge = total * scale;
    let colors = code.to_colors();
    let mut pixels = vec![255u8; (edge * edge) as usize];
    for y in 0..modules {
        for x in 0..modules {
            if colors[(y * modules + x) as usize] == Color::Dark {
                for dy in 0..scale {
                    let row = ((y + quiet) * scale + dy) * edge;
                    let start = (row + (x + quiet) * scale) as usize;
                    pixels[start..start + scale as usize].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, edge, edge);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().map_err(|e| QrError::Png(e.to_string()))?;
    w.write_image_data(&pixels).map_err(|e| QrError::Png(e.to_string()))?;
    w.finish().map_err(|e| QrError::Png(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_bounded_and_well_formed() -> Result<(), QrError> {
        let s = svg("https://lk.example/pair/abc", 10)?;
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        let p = png("https://lk.example/pair/abc", 5000)?;
        assert_eq!(&p[1..4], b"PNG");
        assert!(matches!(png(&"x".repeat(10_000), 200), Err(QrError::TooLong)));
        Ok(())
    }
}
