//! Minimal P-256 point validation: checks `y^2 = x^3 - 3x + b (mod p)`.
//!
//! ring validates points only when verifying, so a `none`-attested ES256 key
//! would otherwise be stored unchecked. This is a tiny, variable-time
//! 256-bit modular arithmetic on public data only (never secrets).

type U256 = [u64; 4]; // little-endian limbs

const P: U256 = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0x0000_0000_0000_0000,
    0xffff_ffff_0000_0001,
];

const B: U256 = [
    0x3bce_3c3e_27d2_604b,
    0x651d_06b0_cc53_b0f6,
    0xb3eb_bd55_7698_86bc,
    0x5ac6_35d8_aa3a_93e7,
];

fn from_be(bytes: &[u8; 32]) -> U256 {
    let mut out = [0u64; 4];
    for (i, limb) in out.iter_mut().enumerate() {
        let start = 32 - 8 * (i + 1);
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[start..start + 8]);
        *limb = u64::from_be_bytes(word);
    }
    out
}

fn geq(a: &U256, b: &U256) -> bool {
    for i in (0..4).rev() {
        if a[i] != b[i] {
            return a[i] > b[i];
        }
    }
    true
}

fn add(a: &U256, b: &U256) -> (U256, bool) {
    let mut out = [0u64; 4];
    let mut carry = false;
    for i in 0..4 {
        let (s1, c1) = a[i].overflowing_add(b[i]);
        let (s2, c2) = s1.overflowing_add(u64::from(carry));
        out[i] = s2;
        carry = c1 || c2;
    }
    (out, carry)
}

fn sub(a: &U256, b: &U256) -> (U256, bool) {
    let mut out = [0u64; 4];
    let mut borrow = false;
    for i in 0..4 {
        let (d1, b1) = a[i].overflowing_sub(b[i]);
        let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
        out[i] = d2;
        borrow = b1 || b2;
    }
    (out, borrow)
}

/// (a + b) mod p for a, b < p.
fn add_mod(a: &U256, b: &U256) -> U256 {
    let (s, carry) = add(a, b);
    if carry || geq(&s, &P) {
        sub(&s, &P).0
    } else {
        s
    }
}

/// (a - b) mod p for a, b < p.
fn sub_mod(a: &U256, b: &U256) -> U256 {
    let (d, borrow) = sub(a, b);
    if borrow { add(&d, &P).0 } else { d }
}

/// (a * b) mod p for a, b < p, by double-and-add.
fn mul_mod(a: &U256, b: &U256) -> U256 {
    let mut r = [0u64; 4];
    for i in (0..256).rev() {
        r = add_mod(&r, &r);
        if (b[i / 64] >> (i % 64)) & 1 == 1 {
            r = add_mod(&r, a);
        }
    }
    r
}

/// True when (x, y) is an affine point on P-256 with coordinates below p.
pub(crate) fn is_on_curve(x: &[u8; 32], y: &[u8; 32]) -> bool {
    let x = from_be(x);
    let y = from_be(y);
    if geq(&x, &P) || geq(&y, &P) {
        return false;
    }
    let lhs = mul_mod(&y, &y);
    let x3 = mul_mod(&mul_mod(&x, &x), &x);
    let three_x = add_mod(&add_mod(&x, &x), &x);
    let rhs = add_mod(&sub_mod(&x3, &three_x), &B);
    lhs == rhs
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
        assert!(super::is_on_curve(&gx, &gy));
        let mut bad = gy;
        bad[31] ^= 1;
        assert!(!super::is_on_curve(&gx, &bad));
        assert!(!super::is_on_curve(&[0xff; 32], &gy));
    }
}
