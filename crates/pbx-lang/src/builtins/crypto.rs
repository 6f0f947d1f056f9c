//! `CryDigest` (CGPL.md §6.7): MD5, SHA-1 and SHA-256, and HMAC with them
//! when a key ("salt") is given.

use md5::Md5;
use sha1::Sha1;
use sha2::digest::Digest;
use sha2::Sha256;

use super::{arg, bytes_arg, function, Builtin, Ctx};
use crate::value::{OpError, Value};

pub(super) const TABLE: &[Builtin] = &[function("CryDigest", 2, 3, "algorithm, data [, key]", cry_digest)];

fn cry_digest(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let Some(algorithm) = arg(args, 0).as_str_bytes() else {
        return Ok(Value::Null);
    };
    let data = bytes_arg(args, 1, "CryDigest")?;
    let key = match arg(args, 2) {
        Value::Null => None,
        _ => Some(bytes_arg(args, 2, "CryDigest")?),
    };
    let algorithm = String::from_utf8_lossy(algorithm)
        .to_ascii_uppercase()
        .replace('-', "");
    let digest = match algorithm.as_str() {
        "MD5" => compute::<Md5>(data, key),
        "SHA1" => compute::<Sha1>(data, key),
        "SHA256" => compute::<Sha256>(data, key),
        _ => return Ok(Value::Null),
    };
    Ok(Value::data(digest))
}

/// The digest of `data`, or its HMAC (RFC 2104) under `key`.
fn compute<D: Digest>(data: &[u8], key: Option<&[u8]>) -> Vec<u8> {
    let Some(key) = key else {
        return D::digest(data).to_vec();
    };
    // Every digest here works on 64-byte blocks.
    const BLOCK: usize = 64;
    let mut block_key = [0u8; BLOCK];
    if key.len() > BLOCK {
        let hashed = D::digest(key);
        block_key[..hashed.len()].copy_from_slice(&hashed);
    } else {
        block_key[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block_key.iter().map(|byte| byte ^ 0x36).collect();
    let outer_pad: Vec<u8> = block_key.iter().map(|byte| byte ^ 0x5c).collect();
    let mut inner = D::new();
    inner.update(&inner_pad);
    inner.update(data);
    let inner_digest = inner.finalize();
    let mut outer = D::new();
    outer.update(&outer_pad);
    outer.update(inner_digest);
    outer.finalize().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    #[test]
    fn hmac_matches_rfc_4231_and_2202() {
        // RFC 4231 test case 2 and RFC 2202 test case 2.
        let data = b"what do ya want for nothing?";
        assert_eq!(
            hex(&compute::<Sha256>(data, Some(b"Jefe"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&compute::<Md5>(data, Some(b"Jefe"))),
            "750c783e6ab0b503eaa86e310a5db738"
        );
        assert_eq!(
            hex(&compute::<Sha1>(data, Some(b"Jefe"))),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }
}
