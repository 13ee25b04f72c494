//! Charts that must fit a vendor's byte limit (a WeCom image message takes
//! at most 2 MB). A chart that is too big is re-encoded first (opaque
//! pixels lose their alpha channel, strongest compression), then scaled
//! down step by step, so the alert keeps a readable chart instead of one
//! the vendor refuses.

use std::borrow::Cow;
use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::FilterType;
use image::{DynamicImage, ImageEncoder, ImageFormat, ImageReader, Limits};

/// Scaling rounds before giving up (each aims under the limit).
const ROUNDS: usize = 8;
/// Narrower than this, a chart says nothing any more.
const MIN_SIDE: u32 = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FitError {
    #[error("the chart is not a readable PNG: {0}")]
    Unreadable(String),
    #[error("the chart cannot be made smaller than {limit} bytes")]
    TooLarge { limit: usize },
}

/// `png` itself when it is within `max_bytes`, else a smaller PNG of the
/// same picture that is.
pub fn fit_png(png: &[u8], max_bytes: usize) -> Result<Cow<'_, [u8]>, FitError> {
    if png.len() <= max_bytes {
        return Ok(Cow::Borrowed(png));
    }
    let mut picture = decode(png)?;
    if picture.color().has_alpha() && is_opaque(&picture) {
        picture = DynamicImage::ImageRgb8(picture.to_rgb8());
    }
    let mut out = encode(&picture)?;
    let (width, height) = (picture.width(), picture.height());
    let mut scale = 1.0_f64;
    for _ in 0..ROUNDS {
        if out.len() <= max_bytes {
            return Ok(Cow::Owned(out));
        }
        // Bytes go roughly with the area: aim a little under the limit.
        scale *= (max_bytes as f64 / out.len() as f64).sqrt() * 0.9;
        let (w, h) = (
            (f64::from(width) * scale).round() as u32,
            (f64::from(height) * scale).round() as u32,
        );
        if w.min(h) < MIN_SIDE {
            break;
        }
        out = encode(&picture.resize_exact(w, h, FilterType::Triangle))?;
    }
    if out.len() <= max_bytes {
        return Ok(Cow::Owned(out));
    }
    Err(FitError::TooLarge { limit: max_bytes })
}

fn decode(png: &[u8]) -> Result<DynamicImage, FitError> {
    let mut reader = ImageReader::with_format(Cursor::new(png), ImageFormat::Png);
    // A chart is a few megapixels; refuse anything that would eat the worker.
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    reader
        .decode()
        .map_err(|e| FitError::Unreadable(e.to_string()))
}

fn is_opaque(picture: &DynamicImage) -> bool {
    picture.to_rgba8().pixels().all(|p| p.0[3] == u8::MAX)
}

fn encode(picture: &DynamicImage) -> Result<Vec<u8>, FitError> {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Best, PngFilter::Adaptive)
        .write_image(
            picture.as_bytes(),
            picture.width(),
            picture.height(),
            picture.color().into(),
        )
        .map_err(|e| FitError::Unreadable(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    /// Noise compresses badly: a big PNG of it is a worst-case chart.
    fn noisy_png(width: u32, height: u32, alpha: u8) -> Vec<u8> {
        let mut rng = fastrand::Rng::with_seed(7);
        let picture = RgbaImage::from_fn(width, height, |_, _| {
            Rgba([rng.u8(..), rng.u8(..), rng.u8(..), alpha])
        });
        let mut out = Vec::new();
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, PngFilter::NoFilter)
            .write_image(
                picture.as_raw(),
                width,
                height,
                image::ExtendedColorType::Rgba8,
            )
            .unwrap();
        out
    }

    fn size_of(png: &[u8]) -> (u32, u32) {
        let p = decode(png).unwrap();
        (p.width(), p.height())
    }

    #[test]
    fn a_chart_within_the_limit_is_the_same_bytes() {
        let png = noisy_png(100, 50, 255);
        let fitted = fit_png(&png, png.len()).unwrap();
        assert!(matches!(fitted, Cow::Borrowed(_)));
        assert_eq!(&*fitted, &png[..]);
    }

    #[test]
    fn an_oversized_chart_is_scaled_under_the_limit_keeping_its_shape() {
        let png = noisy_png(1600, 900, 255);
        let limit = 2 * 1024 * 1024;
        assert!(
            png.len() > limit,
            "the fixture must be too big: {}",
            png.len()
        );
        let fitted = fit_png(&png, limit).unwrap();
        assert!(fitted.len() <= limit, "{} bytes", fitted.len());
        let (w, h) = size_of(&fitted);
        assert!(w < 1600 && w > 800, "scaled no more than needed: {w}x{h}");
        let ratio = f64::from(w) / f64::from(h);
        assert!((ratio - 16.0 / 9.0).abs() < 0.01, "{w}x{h}");
    }

    #[test]
    fn dropping_an_opaque_alpha_channel_can_be_enough() {
        // Translucent noise keeps its alpha; opaque noise loses a quarter.
        let opaque = noisy_png(600, 400, 255);
        let limit = opaque.len() * 4 / 5;
        let fitted = fit_png(&opaque, limit).unwrap();
        assert_eq!(size_of(&fitted), (600, 400), "not scaled");
        assert!(fitted.len() <= limit);
    }

    #[test]
    fn what_cannot_fit_or_be_read_is_an_error() {
        let png = noisy_png(300, 300, 255);
        assert_eq!(
            fit_png(&png, 1_000),
            Err(FitError::TooLarge { limit: 1_000 })
        );
        assert!(matches!(
            fit_png(b"not a png at all", 4),
            Err(FitError::Unreadable(_))
        ));
    }
}
