//! QR codes for enrolment, rendered as SVG or PNG without image dependencies.

use qrcode::{Color, EcLevel, QrCode};

use super::OtpError;

/// The largest PNG scale (pixels per module) accepted.
const MAX_SCALE: u32 = 32;

/// The QR code of an otpauth:// URI, ready to render.
///
/// Built with error-correction level M; rendered with a 4-module quiet zone
/// ([`EnrolmentQr::QUIET_ZONE`]) as an SVG document with one `<path>` of the dark modules, or
/// as an 8-bit greyscale PNG. The image contains the secret: serve it with
/// `Cache-Control: no-store` to the enrolling user only.
///
/// ```
/// use ciam_core::otp::EnrolmentQr;
///
/// let qr = EnrolmentQr::new("otpauth://totp/Acme:ada?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
/// assert!(qr.to_svg().starts_with("<svg"));
/// assert!(qr.to_png(4).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));
/// ```
#[derive(Clone)]
pub struct EnrolmentQr {
    width: usize,
    dark: Vec<bool>,
}

impl std::fmt::Debug for EnrolmentQr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The modules encode the secret; show only the size.
        f.debug_struct("EnrolmentQr")
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

impl EnrolmentQr {
    /// The light border around the code, in modules (ISO/IEC 18004 asks for 4).
    pub const QUIET_ZONE: usize = 4;

    /// Encodes text (an otpauth:// URI) as a QR code.
    pub fn new(data: &str) -> Result<Self, OtpError> {
        let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
            .map_err(|e| OtpError::Qr(e.to_string()))?;
        Ok(Self {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect(),
        })
    }

    /// The number of modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` (without the quiet zone) is dark. Outside the
    /// code it is light.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark.get(y * self.width + x).copied() == Some(true)
    }

    /// The side of the rendered image in modules, quiet zone included.
    pub fn size_with_quiet_zone(&self) -> usize {
        self.width + 2 * Self::QUIET_ZONE
    }

    /// Renders an SVG document: a white background and one black `<path>` made of a
    /// rectangle per horizontal run of dark modules, one user unit per module.
    pub fn to_svg(&self) -> String {
        let size = self.size_with_quiet_zone();
        let mut path = String::new();
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if self.is_dark(x, y) {
                    let start = x;
                    while x < self.width && self.is_dark(x, y) {
                        x += 1;
                    }
                    path.push_str(&format!(
                        "M{} {}h{}v1h-{}z",
                        start + Self::QUIET_ZONE,
                        y + Self::QUIET_ZONE,
                        x - start,
                        x - start
                    ));
                } else {
                    x += 1;
                }
            }
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" viewBox=\"0 0 {size} {size}\" \
             width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\">\
             <rect width=\"{size}\" height=\"{size}\" fill=\"#ffffff\"/>\
             <path fill=\"#000000\" d=\"{path}\"/></svg>",
            px = size * 8
        )
    }

    /// Renders a PNG: 8-bit greyscale, `scale` pixels per module (1 to 32), quiet zone
    /// included. The image data is a zlib stream of stored (uncompressed) deflate blocks.
    pub fn to_png(&self, scale: u32) -> Result<Vec<u8>, OtpError> {
        if scale == 0 || scale > MAX_SCALE {
            return Err(OtpError::InvalidConfig(format!(
                "the PNG scale is 1 to {MAX_SCALE} pixels per module, not {scale}"
            )));
        }
        let scale = scale as usize;
        let side = self.size_with_quiet_zone() * scale;
        let side_u32 = u32::try_from(side)
            .map_err(|_| OtpError::InvalidConfig("the image is too large".to_owned()))?;
        // Raw scanlines: a filter byte (0, none) and one byte per pixel.
        let mut raw = Vec::with_capacity(side * (side + 1));
        for py in 0..side {
            raw.push(0);
            let y = (py / scale).wrapping_sub(Self::QUIET_ZONE);
            for px in 0..side {
                let x = (px / scale).wrapping_sub(Self::QUIET_ZONE);
                raw.push(if self.is_dark(x, y) { 0x00 } else { 0xff });
            }
        }

        let mut png = Vec::with_capacity(raw.len() + raw.len() / 65_535 * 5 + 64);
        png.extend_from_slice(b"\x89PNG\r\n\x1a\n");
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&side_u32.to_be_bytes());
        ihdr.extend_from_slice(&side_u32.to_be_bytes());
        // Bit depth 8, colour type 0 (greyscale), deflate, adaptive filtering, no interlace.
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        write_chunk(&mut png, b"IHDR", &ihdr);
        write_chunk(&mut png, b"IDAT", &zlib_stored(&raw));
        write_chunk(&mut png, b"IEND", &[]);
        Ok(png)
    }
}

fn write_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    // Chunk data is bounded by the image size checked in `to_png`, far below 2^31.
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = png.len();
    png.extend_from_slice(kind);
    png.extend_from_slice(data);
    let crc = crc32(&png[start..]);
    png.extend_from_slice(&crc.to_be_bytes());
}

/// A zlib stream (RFC 1950) of stored deflate blocks (RFC 1951 §3.2.4).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    const MAX_BLOCK: usize = 65_535;
    let mut out = Vec::with_capacity(data.len() + data.len() / MAX_BLOCK * 5 + 11);
    // CMF: deflate, 32 KiB window; FLG: fastest, no dictionary, (CMF·256 + FLG) % 31 == 0.
    out.extend_from_slice(&[0x78, 0x01]);
    let mut blocks = data.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(block) = blocks.next() {
        let last = blocks.peek().is_none();
        out.push(u8::from(last));
        // `chunks(MAX_BLOCK)` keeps every block length within 16 bits.
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

/// CRC-32 (ISO 3309, reflected polynomial 0xEDB88320), as PNG chunks use.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Adler-32 (RFC 1950 §8).
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the longest run before `b` could overflow.
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b"IEND"), 0xae42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        assert_eq!(adler32(b""), 1);
        let big = vec![0xffu8; 100_000];
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &big {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&big), ((b << 16) | a) as u32);
    }

    #[test]
    fn stored_blocks_split_at_64k() {
        let data = vec![7u8; 70_000];
        let z = zlib_stored(&data);
        assert_eq!(&z[..2], &[0x78, 0x01]);
        assert_eq!(z[2], 0);
        assert_eq!(z.len(), 2 + 5 + 65_535 + 5 + (70_000 - 65_535) + 4);
        assert_eq!(z[2 + 5 + 65_535], 1);
    }
}
