//! Minimal point validation for P-256 and P-384: checks `y^2 = x^3 - 3x + b (mod p)`.
//!
//! ring validates points only when verifying, so a `none`-attested ECDSA key
//! would otherwise be stored unchecked. This is a tiny, variable-time
//! modular arithmetic on public data only (never secrets), generic over the
//! number of 64-bit limbs (4 for P-256, 6 for P-384).

/// Little-endian 64-bit limbs.
type Limbs<const N: usize> = [u64; N];

const P256_P: Limbs<4> = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0x0000_0000_0000_0000,
    0xffff_ffff_0000_0001,
];

const P256_B: Limbs<4> = [
    0x3bce_3c3e_27d2_604b,
    0x651d_06b0_cc53_b0f6,
    0xb3eb_bd55_7698_86bc,
    0x5ac6_35d8_aa3a_93e7,
];

/// P-384 field prime `2^384 - 2^128 - 2^96 + 2^32 - 1` (SEC 2 / FIPS 186-4 D.1.2.4).
const P384_P: Limbs<6> = [
    0x0000_0000_ffff_ffff,
    0xffff_ffff_0000_0000,
    0xffff_ffff_ffff_fffe,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
];

/// P-384 curve coefficient `b` (SEC 2 / FIPS 186-4 D.1.2.4).
const P384_B: Limbs<6> = [
    0x2a85_c8ed_d3ec_2aef,
    0xc656_398d_8a2e_d19d,
    0x0314_088f_5013_875a,
    0x181d_9c6e_fe81_4112,
    0x988e_056b_e3f8_2d19,
    0xb331_2fa7_e23e_e7e4,
];

fn from_be<const N: usize>(bytes: &[u8]) -> Option<Limbs<N>> {
    if bytes.len() != 8 * N {
        return None;
    }
    let mut out = [0u64; N];
    for (i, chunk) in bytes.rchunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        *out.get_mut(i)? = u64::from_be_bytes(word);
    }
    Some(out)
}

fn geq<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> bool {
    for (x, y) in a.iter().zip(b).rev() {
        if x != y {
            return x > y;
        }
    }
    true
}

fn add<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> (Limbs<N>, bool) {
    let mut out = [0u64; N];
    let mut carry = false;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let (s1, c1) = x.overflowing_add(*y);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        *o = s2;
        carry = c1 || c2;
    }
    (out, carry)
}

fn sub<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> (Limbs<N>, bool) {
    let mut out = [0u64; N];
    let mut borrow = false;
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        let (d1, b1) = x.overflowing_sub(*y);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        *o = d2;
        borrow = b1 || b2;
    }
    (out, borrow)
}

/// (a + b) mod p for a, b < p.
fn add_mod<const N: usize>(a: &Limbs<N>, b: &Limbs<N>, p: &Limbs<N>) -> Limbs<N> {
    let (s, carry) = add(a, b);
    if carry || geq(&s, p) { sub(&s, p).0 } else { s }
}

/// (a - b) mod p for a, b < p.
fn sub_mod<const N: usize>(a: &Limbs<N>, b: &Limbs<N>, p: &Limbs<N>) -> Limbs<N> {
    let (d, borrow) = sub(a, b);
    if borrow { add(&d, p).0 } else { d }
}

/// (a * b) mod p for a, b < p, by double-and-add.
fn mul_mod<const N: usize>(a: &Limbs<N>, b: &Limbs<N>, p: &Limbs<N>) -> Limbs<N> {
    let mut r = [0u64; N];
    for limb in b.iter().rev() {
        for bit in (0..64).rev() {
            r = add_mod(&r, &r, p);
            if (limb >> bit) & 1 == 1 {
                r = add_mod(&r, a, p);
            }
        }
    }
    r
}

/// True when big-endian (x, y) is an affine point on `y^2 = x^3 - 3x + b` mod
/// `p`, with both coordinates exactly `8 * N` bytes and below `p`.
fn on_curve<const N: usize>(x: &[u8], y: &[u8], p: &Limbs<N>, b: &Limbs<N>) -> bool {
    let (Some(x), Some(y)) = (from_be::<N>(x), from_be::<N>(y)) else {
        return false;
    };
    if geq(&x, p) || geq(&y, p) {
        return false;
    }
    let lhs = mul_mod(&y, &y, p);
    let x3 = mul_mod(&mul_mod(&x, &x, p), &x, p);
    let three_x = add_mod(&add_mod(&x, &x, p), &x, p);
    let rhs = add_mod(&sub_mod(&x3, &three_x, p), b, p);
    lhs == rhs
}

/// True when (x, y) is an affine point on P-256 with coordinates below p.
pub(crate) fn is_on_p256(x: &[u8; 32], y: &[u8; 32]) -> bool {
    on_curve(x, y, &P256_P, &P256_B)
}

/// True when (x, y) is an affine point on P-384 with coordinates below p.
pub(crate) fn is_on_p384(x: &[u8; 48], y: &[u8; 48]) -> bool {
    on_curve(x, y, &P384_P, &P384_B)
}

#[cfg(test)]
mod tests {
    #[test]
    fn generator_is_on_curve_and_perturbed_is_not() {
        let gx: [u8; 32] = [
            0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4,
            0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45,
            0xd8, 0x98, 0xc2, 0x96,
        ];
        let gy: [u8; 32] = [
            0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f,
            0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68,
            0x37, 0xbf, 0x51, 0xf5,
        ];
        assert!(super::is_on_p256(&gx, &gy));
        let mut bad = gy;
        bad[31] ^= 1;
        assert!(!super::is_on_p256(&gx, &bad));
        assert!(!super::is_on_p256(&[0xff; 32], &gy));
    }

    fn hex48(s: &str) -> [u8; 48] {
        let mut out = [0u8; 48];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        out
    }

    /// P-384 base point from SEC 2 / FIPS 186-4 D.1.2.4.
    #[test]
    fn p384_generator_is_on_curve_and_perturbed_is_not() {
        let gx = hex48(
            "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
        );
        let gy = hex48(
            "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
        );
        assert!(super::is_on_p384(&gx, &gy));
        let mut bad = gy;
        bad[47] ^= 1;
        assert!(!super::is_on_p384(&gx, &bad));
        assert!(!super::is_on_p384(&[0xff; 48], &gy));
    }
}
