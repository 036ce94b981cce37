//! Base32 (RFC 4648 §6), as used for OTP secrets in otpauth:// URIs.
//!
//! [`encode`] writes the upper-case alphabet without padding. [`decode`] accepts upper or lower
//! case and optional trailing `=` padding, and refuses any other character, a length no
//! encoding can produce, and non-zero unused bits in the last character (non-canonical input).

use zeroize::Zeroizing;

use super::OtpError;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Encodes bytes as upper-case base32 without padding.
///
/// ```
/// assert_eq!(ciam_core::otp::base32::encode(b"foobar"), "MZXW6YTBOI");
/// ```
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 0x1f)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 0x1f)],
        ));
    }
    out
}

fn value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a'),
        b'2'..=b'7' => Some(c - b'2' + 26),
        _ => None,
    }
}

/// Decodes base32, tolerating lower case and trailing `=` padding.
///
/// The output is wiped on drop, because it is usually a shared secret.
///
/// ```
/// use ciam_core::otp::base32::decode;
///
/// assert_eq!(decode("mzxw6ytboi======").unwrap().as_slice(), b"foobar");
/// assert!(decode("MZXW6YTB0I").is_err()); // '0' is not in the alphabet
/// ```
pub fn decode(text: &str) -> Result<Zeroizing<Vec<u8>>, OtpError> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    if padding > 6 || (padding > 0 && !text.len().is_multiple_of(8)) {
        return Err(OtpError::InvalidBase32);
    }
    // A final group of 1, 3 or 6 characters cannot come from whole bytes.
    if matches!(body.len() % 8, 1 | 3 | 6) {
        return Err(OtpError::InvalidBase32);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() * 5 / 8));
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &c in body.as_bytes() {
        let v = value(c).ok_or(OtpError::InvalidBase32)?;
        buffer = (buffer << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if buffer != 0 {
        return Err(OtpError::InvalidBase32);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_lengths() {
        let data: Vec<u8> = (0u8..=40).map(|i| i.wrapping_mul(37)).collect();
        for n in 0..data.len() {
            let text = encode(&data[..n]);
            assert_eq!(decode(&text).unwrap().as_slice(), &data[..n]);
            assert_eq!(decode(&text.to_lowercase()).unwrap().as_slice(), &data[..n]);
        }
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "A",
            "ABC",
            "ABCDEF",
            "MZ=XW6===",
            "MZXW6 YTB",
            "MZXW6YTBOI=",
            "MZXR",
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }
}
