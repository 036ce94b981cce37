//! Authenticator data parsing (L3 §6.1).

use crate::Error;

/// Maximum credential ID length accepted (L3 §7.1).
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;

/// Authenticator data flags (bit 0 UP, 2 UV, 3 BE, 4 BS, 6 AT, 7 ED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flags(pub(crate) u8);

impl Flags {
    /// User present.
    pub(crate) fn up(self) -> bool {
        self.0 & 0x01 != 0
    }
    /// User verified.
    pub(crate) fn uv(self) -> bool {
        self.0 & 0x04 != 0
    }
    /// Backup eligible.
    pub(crate) fn be(self) -> bool {
        self.0 & 0x08 != 0
    }
    /// Backup state.
    pub(crate) fn bs(self) -> bool {
        self.0 & 0x10 != 0
    }
    /// Attested credential data included.
    pub(crate) fn at(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// Extension data included.
    pub(crate) fn ed(self) -> bool {
        self.0 & 0x80 != 0
    }
}

pub(crate) struct AttestedCredential<'a> {
    pub(crate) aaguid: [u8; 16],
    pub(crate) credential_id: &'a [u8],
    pub(crate) public_key_cose: &'a [u8],
    pub(crate) public_key: ciborium::Value,
}

pub(crate) struct AuthData<'a> {
    pub(crate) rp_id_hash: &'a [u8],
    pub(crate) flags: Flags,
    pub(crate) sign_count: u32,
    pub(crate) attested: Option<AttestedCredential<'a>>,
}

/// Reads exactly one CBOR item from the front of `bytes`; returns it and its length.
pub(crate) fn read_cbor_item(bytes: &[u8]) -> Result<(ciborium::Value, usize), Error> {
    let mut cursor = std::io::Cursor::new(bytes);
    let value: ciborium::Value =
        ciborium::de::from_reader(&mut cursor).map_err(|_| Error::Malformed("CBOR"))?;
    let used = usize::try_from(cursor.position()).map_err(|_| Error::Malformed("CBOR"))?;
    Ok((value, used))
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], Error> {
    if input.len() < n {
        return Err(Error::Malformed("authenticator data truncated"));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

pub(crate) fn parse(bytes: &[u8]) -> Result<AuthData<'_>, Error> {
    let mut input = bytes;
    let rp_id_hash = take(&mut input, 32)?;
    let flags = Flags(take(&mut input, 1)?.first().copied().unwrap_or(0));
    let count = take(&mut input, 4)?;
    let sign_count = u32::from_be_bytes([
        count.first().copied().unwrap_or(0),
        count.get(1).copied().unwrap_or(0),
        count.get(2).copied().unwrap_or(0),
        count.get(3).copied().unwrap_or(0),
    ]);
    let attested = if flags.at() {
        let aaguid_bytes = take(&mut input, 16)?;
        let mut aaguid = [0u8; 16];
        aaguid.copy_from_slice(aaguid_bytes);
        let len_bytes = take(&mut input, 2)?;
        let len = usize::from(u16::from_be_bytes([
            len_bytes.first().copied().unwrap_or(0),
            len_bytes.get(1).copied().unwrap_or(0),
        ]));
        if len > MAX_CREDENTIAL_ID_LEN {
            return Err(Error::CredentialIdTooLong(len));
        }
        if len == 0 {
            return Err(Error::Malformed("empty credential id"));
        }
        let credential_id = take(&mut input, len)?;
        if input.is_empty() {
            return Err(Error::Malformed("authenticator data truncated"));
        }
        let (public_key, used) = read_cbor_item(input)?;
        let public_key_cose = take(&mut input, used)?;
        Some(AttestedCredential {
            aaguid,
            credential_id,
            public_key_cose,
            public_key,
        })
    } else {
        None
    };
    if flags.ed() {
        if input.is_empty() {
            return Err(Error::Malformed("ED flag set but no extensions"));
        }
        let (ext, used) = read_cbor_item(input)?;
        if !matches!(ext, ciborium::Value::Map(_)) {
            return Err(Error::Malformed("extensions are not a CBOR map"));
        }
        take(&mut input, used)?;
    }
    if !input.is_empty() {
        return Err(Error::Malformed("trailing bytes after authenticator data"));
    }
    Ok(AuthData {
        rp_id_hash,
        flags,
        sign_count,
        attested,
    })
}
