//! `CryDigest` (CGPL.md §6.7): MD5, SHA-1 and SHA-256, and HMAC with them
//! when a key ("salt") is given. `CryEncrypt` and `CryDecrypt`: AES and
//! triple DES in CBC mode with PKCS#7 padding and a random IV that leads the
//! encrypted datablock, and RC4 (docs/language.md records these choices).

use aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::typenum::Unsigned;
use cbc::cipher::{
    BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit,
};
use des::{TdesEde2, TdesEde3};
use md5::Md5;
use sha1::Sha1;
use sha2::digest::Digest;
use sha2::Sha256;

use super::{arg, bytes_arg, function, Builtin, Ctx};
use crate::value::{OpError, Value};

pub(super) const TABLE: &[Builtin] = &[
    function("CryDigest", 2, 3, "algorithm, data [, key]", cry_digest),
    function("CryEncrypt", 3, 3, "algorithm, key, data", cry_encrypt),
    function("CryDecrypt", 3, 3, "algorithm, key, data", cry_decrypt),
];

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

fn cry_encrypt(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let Some(name) = arg(args, 0).as_str_bytes() else {
        return Ok(Value::Null);
    };
    let key = bytes_arg(args, 1, "CryEncrypt")?;
    let data = bytes_arg(args, 2, "CryEncrypt")?;
    let Some(cipher) = Cipher::named(name) else {
        return Ok(Value::Null);
    };
    Ok(cipher.encrypt(key, data)?.map_or(Value::Null, Value::data))
}

fn cry_decrypt(_: &mut Ctx<'_>, args: &[Value]) -> Result<Value, OpError> {
    let Some(name) = arg(args, 0).as_str_bytes() else {
        return Ok(Value::Null);
    };
    let key = bytes_arg(args, 1, "CryDecrypt")?;
    let data = bytes_arg(args, 2, "CryDecrypt")?;
    let Some(cipher) = Cipher::named(name) else {
        return Ok(Value::Null);
    };
    Ok(cipher.decrypt(key, data).map_or(Value::Null, Value::data))
}

/// The ciphers of `CryEncrypt` and `CryDecrypt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// AES-128, -192 or -256 by the key's length; CBC, PKCS#7, random IV.
    Aes,
    /// Triple DES EDE, three keys or two; CBC, PKCS#7, random IV.
    Des3,
    /// The RC4 stream cipher (weak; there because CommuniGate lists it).
    Rc4,
}

/// A cipher named by a script: its family, and the one key length that
/// names such as `AES-256-CBC` insist on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cipher {
    family: Family,
    key_len: Option<usize>,
}

impl Cipher {
    /// The cipher called `name` (any case; dashes do not count), if any.
    fn named(name: &[u8]) -> Option<Cipher> {
        let name = String::from_utf8_lossy(name)
            .to_ascii_uppercase()
            .replace('-', "");
        let (family, key_len) = match name.as_str() {
            "AES" => (Family::Aes, None),
            "AES128CBC" => (Family::Aes, Some(16)),
            "AES192CBC" => (Family::Aes, Some(24)),
            "AES256CBC" => (Family::Aes, Some(32)),
            "DES3" => (Family::Des3, None),
            "DESEDE3CBC" => (Family::Des3, Some(24)),
            "RC4" => (Family::Rc4, None),
            _ => return None,
        };
        Some(Cipher { family, key_len })
    }

    /// Whether a key of `len` bytes belongs to a name that fixes the length.
    fn takes_key_of(self, len: usize) -> bool {
        self.key_len.is_none_or(|wanted| wanted == len)
    }

    /// `data` encrypted under `key`, or `None` for a key of the wrong length
    /// (RC4 takes 1 to 256 bytes: its key schedule reads no more).
    fn encrypt(self, key: &[u8], data: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
        if !self.takes_key_of(key.len()) {
            return Ok(None);
        }
        match (self.family, key.len()) {
            (Family::Aes, 16) => seal::<Aes128>(key, data),
            (Family::Aes, 24) => seal::<Aes192>(key, data),
            (Family::Aes, 32) => seal::<Aes256>(key, data),
            (Family::Des3, 24) => seal::<TdesEde3>(key, data),
            (Family::Des3, 16) => seal::<TdesEde2>(key, data),
            (Family::Rc4, 1..=256) => Ok(Some(rc4(key, data))),
            _ => Ok(None),
        }
    }

    /// What [`Cipher::encrypt`] made of `data`, or `None` when the key has
    /// the wrong length or `data` cannot be what it made (too short, not
    /// whole blocks, padding that is not PKCS#7).
    fn decrypt(self, key: &[u8], data: &[u8]) -> Option<Vec<u8>> {
        if !self.takes_key_of(key.len()) {
            return None;
        }
        match (self.family, key.len()) {
            (Family::Aes, 16) => open::<Aes128>(key, data),
            (Family::Aes, 24) => open::<Aes192>(key, data),
            (Family::Aes, 32) => open::<Aes256>(key, data),
            (Family::Des3, 24) => open::<TdesEde3>(key, data),
            (Family::Des3, 16) => open::<TdesEde2>(key, data),
            (Family::Rc4, 1..=256) => Some(rc4(key, data)),
            _ => None,
        }
    }
}

/// `data` in CBC mode under `key` with a fresh random IV, padded by
/// PKCS#7; the IV comes first in the result. `None` for a key of the wrong
/// length.
fn seal<C: BlockCipherEncrypt + KeyInit>(key: &[u8], data: &[u8]) -> Result<Option<Vec<u8>>, OpError> {
    let mut sealed = random_bytes(C::BlockSize::USIZE)?;
    let Some(body) = cbc_encrypt::<C>(key, &sealed, data) else {
        return Ok(None);
    };
    sealed.extend_from_slice(&body);
    Ok(Some(sealed))
}

/// The inverse of [`seal`]: the IV is the first block of `sealed`, and at
/// least one block of ciphertext must follow it.
fn open<C: BlockCipherDecrypt + KeyInit>(key: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    let block = C::BlockSize::USIZE;
    if sealed.len() < 2 * block || !sealed.len().is_multiple_of(block) {
        return None;
    }
    let (iv, body) = sealed.split_at(block);
    cbc_decrypt::<C>(key, iv, body)
}

/// CBC encryption of `data` with PKCS#7 padding (always at least one byte,
/// so a whole block of padding when `data` fills its last block). `None`
/// when `key` or `iv` has the wrong length for `C`.
fn cbc_encrypt<C: BlockCipherEncrypt + KeyInit>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mode = cbc::Encryptor::<C>::new_from_slices(key, iv).ok()?;
    Some(mode.encrypt_padded_vec::<Pkcs7>(data))
}

/// CBC decryption and removal of the PKCS#7 padding. `None` when `key` or
/// `iv` has the wrong length, `data` is not whole blocks (or none), or the
/// padding is wrong.
fn cbc_decrypt<C: BlockCipherDecrypt + KeyInit>(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let mode = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    mode.decrypt_padded_vec::<Pkcs7>(data).ok()
}

/// RC4: `data` XORed with the keystream of `key` (1 to 256 bytes). The
/// same call encrypts and decrypts.
fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    debug_assert!((1..=256).contains(&key.len()), "RC4 keys are 1 to 256 bytes");
    // Key schedule: a permutation of 0..=255 stirred by the key bytes.
    let mut state = [0u8; 256];
    for (slot, value) in state.iter_mut().zip(0..=u8::MAX) {
        *slot = value;
    }
    let mut stir = 0u8;
    for position in 0..state.len() {
        stir = stir
            .wrapping_add(state[position])
            .wrapping_add(key[position % key.len()]);
        state.swap(position, usize::from(stir));
    }
    // Output: each step swaps two entries and yields a third.
    let (mut first, mut second) = (0u8, 0u8);
    data.iter()
        .map(|&byte| {
            first = first.wrapping_add(1);
            second = second.wrapping_add(state[usize::from(first)]);
            state.swap(usize::from(first), usize::from(second));
            let index = state[usize::from(first)].wrapping_add(state[usize::from(second)]);
            byte ^ state[usize::from(index)]
        })
        .collect()
}

/// `count` bytes from the system's random source.
fn random_bytes(count: usize) -> Result<Vec<u8>, OpError> {
    let mut bytes = vec![0u8; count];
    getrandom::fill(&mut bytes).map_err(|error| OpError {
        kind: crate::ErrorKind::Internal,
        message: format!("the system's random source failed: {error}"),
        help: None,
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn unhex(text: &str) -> Vec<u8> {
        let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
            .collect()
    }

    /// One block through `C` and back.
    fn single_block<C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit>(key: &str, plain: &str) -> String {
        let cipher = C::new_from_slice(&unhex(key)).expect("key length");
        let plain = unhex(plain);
        let mut block = cbc::cipher::Block::<C>::try_from(plain.as_slice()).expect("one block");
        cipher.encrypt_block(&mut block);
        let encrypted = hex(&block);
        cipher.decrypt_block(&mut block);
        assert_eq!(block.as_slice(), plain.as_slice(), "decrypts back");
        encrypted
    }

    fn cipher(name: &str) -> Cipher {
        Cipher::named(name.as_bytes()).expect("known cipher")
    }

    #[test]
    fn aes_matches_fips_197_appendix_c() {
        let plain = "00112233445566778899aabbccddeeff";
        assert_eq!(
            single_block::<Aes128>("000102030405060708090a0b0c0d0e0f", plain),
            "69c4e0d86a7b0430d8cdb78070b4c55a"
        );
        assert_eq!(
            single_block::<Aes192>("000102030405060708090a0b0c0d0e0f1011121314151617", plain),
            "dda97ca4864cdfe06eaf70a0ec0d7191"
        );
        assert_eq!(
            single_block::<Aes256>(
                "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                plain
            ),
            "8ea2b7ca516745bfeafc49904b496089"
        );
    }

    /// NIST SP 800-38A F.2: the four-block CBC example; PKCS#7 then adds a
    /// fifth block, all padding, because the plaintext fills its blocks.
    fn check_sp_800_38a_cbc<C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit>(key: &str, expected: &str) {
        let key = unhex(key);
        let iv = unhex("000102030405060708090a0b0c0d0e0f");
        let plain = unhex(
            "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51
             30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
        );
        let encrypted = cbc_encrypt::<C>(&key, &iv, &plain).expect("encrypts");
        assert_eq!(encrypted.len(), 80);
        assert_eq!(
            hex(&encrypted[..64]),
            expected.split_whitespace().collect::<String>()
        );
        // The padding block is 16 bytes of 0x10, chained on the last block.
        let mut padding = cbc::cipher::Block::<C>::default();
        for (byte, previous) in padding.iter_mut().zip(&encrypted[48..64]) {
            *byte = 0x10 ^ previous;
        }
        C::new_from_slice(&key).expect("key").encrypt_block(&mut padding);
        assert_eq!(hex(&encrypted[64..]), hex(&padding));
        assert_eq!(cbc_decrypt::<C>(&key, &iv, &encrypted), Some(plain));
    }

    #[test]
    fn aes_cbc_matches_sp_800_38a() {
        check_sp_800_38a_cbc::<Aes128>(
            "2b7e151628aed2a6abf7158809cf4f3c",
            "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2
             73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
        );
        check_sp_800_38a_cbc::<Aes256>(
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d
             39f23369a9d9bacfa530e26304231461 b2eb05e2c39be9fcda6c19078c6a9d1b",
        );
    }

    #[test]
    fn pkcs7_pads_short_input_to_its_block() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        for len in 0..40 {
            let data = vec![0xa5; len];
            let encrypted = cbc_encrypt::<Aes128>(&key, &iv, &data).expect("encrypts");
            assert_eq!(encrypted.len(), (len / 16 + 1) * 16, "{len} bytes");
            assert_eq!(cbc_decrypt::<Aes128>(&key, &iv, &encrypted), Some(data));
        }
    }

    #[test]
    fn triple_des_matches_sp_800_67_and_sp_800_20() {
        // SP 800-67 Rev. 1, appendix B: three keys, "The qufck brown fox jump".
        let keys = "0123456789abcdef 23456789abcdef01 456789abcdef0123";
        let blocks = [
            ("5468652071756663", "a826fd8ce53b855f"),
            ("6b2062726f776e20", "cce21c8112256fe6"),
            ("666f78206a756d70", "68d5c05dd9b6b900"),
        ];
        for (plain, encrypted) in blocks {
            assert_eq!(single_block::<TdesEde3>(keys, plain), encrypted);
        }
        // SP 800-20, variable plaintext known-answer test, first round: the
        // three keys alike (and so also as a two-key key).
        let odd = "0101010101010101";
        assert_eq!(
            single_block::<TdesEde3>(&format!("{odd}{odd}{odd}"), "8000000000000000"),
            "95f8a5e5dd31d900"
        );
        assert_eq!(
            single_block::<TdesEde2>(&format!("{odd}{odd}"), "8000000000000000"),
            "95f8a5e5dd31d900"
        );
        // In CBC mode (SP 800-20's TCBC) with a zero IV the first block is the same.
        let encrypted = cbc_encrypt::<TdesEde3>(
            &unhex(&format!("{odd}{odd}{odd}")),
            &[0; 8],
            &unhex("8000000000000000"),
        )
        .expect("encrypts");
        assert_eq!(hex(&encrypted[..8]), "95f8a5e5dd31d900");
        assert_eq!(encrypted.len(), 16);
    }

    #[test]
    fn triple_des_cbc_chains_the_blocks() {
        // The SP 800-67 example in CBC mode: each block is the ECB result of
        // the plaintext XORed with the block before (the IV first).
        let key = unhex("0123456789abcdef 23456789abcdef01 456789abcdef0123");
        let iv = unhex("f69f2445df4f9b17");
        let plain = unhex("5468652071756663 6b2062726f776e20 666f78206a756d70");
        let encrypted = cbc_encrypt::<TdesEde3>(&key, &iv, &plain).expect("encrypts");
        let ecb = TdesEde3::new_from_slice(&key).expect("key");
        let mut previous = iv.clone();
        for (index, chunk) in plain.chunks(8).enumerate() {
            let mut block = cbc::cipher::Block::<TdesEde3>::default();
            for ((byte, plain), previous) in block.iter_mut().zip(chunk).zip(&previous) {
                *byte = plain ^ previous;
            }
            ecb.encrypt_block(&mut block);
            assert_eq!(
                &encrypted[index * 8..index * 8 + 8],
                block.as_slice(),
                "block {index}"
            );
            previous = block.to_vec();
        }
        // Cross-checked with OpenSSL's des-ede3-cbc.
        assert_eq!(
            hex(&encrypted[..24]),
            "a5c282bad0de3774becd2e04386b589fb5057d8552fc4336"
        );
        assert_eq!(cbc_decrypt::<TdesEde3>(&key, &iv, &encrypted), Some(plain));
    }

    #[test]
    fn rc4_matches_rfc_6229() {
        let keystream = rc4(&unhex("0102030405"), &[0; 4112]);
        assert_eq!(hex(&keystream[..16]), "b2396305f03dc027ccc3524a0a1118a8");
        assert_eq!(hex(&keystream[16..32]), "6982944f18fc82d589c403a47a0d0919");
        assert_eq!(hex(&keystream[4096..]), "ff25b58995996707e51fbdf08b34d875");
        assert_eq!(
            hex(&rc4(&unhex("0102030405060708"), &[0; 16])),
            "97ab8a1bf0afb96132f2f67258da15a8"
        );
        assert_eq!(
            hex(&rc4(&unhex("0102030405060708090a0b0c0d0e0f10"), &[0; 16])),
            "9ac7cc9a609d1ef7b2932899cde41b97"
        );
        // The same call decrypts.
        let encrypted = rc4(b"Key", b"Plaintext");
        assert_eq!(rc4(b"Key", &encrypted), b"Plaintext");
    }

    #[test]
    fn names_and_key_lengths() {
        assert_eq!(cipher("aes"), cipher("AES"));
        assert_eq!(cipher("Aes-256-Cbc"), cipher("AES256CBC"));
        assert_eq!(cipher("des3").family, Family::Des3);
        assert_eq!(cipher("DES-EDE3-CBC").key_len, Some(24));
        assert_eq!(cipher("rc4").family, Family::Rc4);
        for unknown in ["", "AES-128-GCM", "DES", "BLOWFISH", "AES128"] {
            assert!(Cipher::named(unknown.as_bytes()).is_none(), "{unknown}");
        }
        let data = b"attack at dawn";
        for (name, good, bad) in [
            ("AES", &[16, 24, 32][..], &[0, 8, 15, 17, 31, 33, 64][..]),
            ("AES-128-CBC", &[16], &[24, 32]),
            ("AES-192-CBC", &[24], &[16, 32]),
            ("AES-256-CBC", &[32], &[16, 24]),
            ("DES3", &[16, 24], &[0, 8, 21, 23, 25, 32]),
            ("DES-EDE3-CBC", &[24], &[16]),
            ("RC4", &[1, 5, 16, 256], &[0, 257]),
        ] {
            let cipher = cipher(name);
            for &len in good {
                let key = vec![0x5a; len];
                let sealed = cipher.encrypt(&key, data).expect("random IV").expect(name);
                assert_eq!(
                    cipher.decrypt(&key, &sealed).as_deref(),
                    Some(&data[..]),
                    "{name} {len}"
                );
            }
            for &len in bad {
                let key = vec![0x5a; len];
                assert_eq!(
                    cipher.encrypt(&key, data).expect("random IV"),
                    None,
                    "{name} {len}"
                );
                assert_eq!(cipher.decrypt(&key, &[0; 64]), None, "{name} {len}");
            }
        }
    }

    #[test]
    fn a_fresh_iv_leads_each_encryption() {
        let aes = cipher("AES");
        let key = [1u8; 16];
        let first = aes.encrypt(&key, b"same").expect("random IV").expect("encrypts");
        let second = aes.encrypt(&key, b"same").expect("random IV").expect("encrypts");
        assert_eq!(first.len(), 32);
        assert_ne!(first[..16], second[..16]);
        assert_eq!(
            cbc_decrypt::<Aes128>(&key, &first[..16], &first[16..]).as_deref(),
            Some(&b"same"[..])
        );
        let des3 = cipher("DES3")
            .encrypt(&[2u8; 24], b"")
            .expect("random IV")
            .expect("encrypts");
        assert_eq!(des3.len(), 16, "an 8-byte IV and a block of padding");
    }

    #[test]
    fn bad_ciphertexts_decrypt_to_none() {
        let aes = cipher("AES");
        let key = [3u8; 32];
        let sealed = aes
            .encrypt(&key, b"0123456789abcdef")
            .expect("random IV")
            .expect("encrypts");
        assert_eq!(sealed.len(), 48);
        assert_eq!(aes.decrypt(&key, &[]), None);
        assert_eq!(aes.decrypt(&key, &sealed[..16]), None, "the IV alone");
        assert_eq!(aes.decrypt(&key, &sealed[..47]), None, "not whole blocks");
        assert_eq!(aes.decrypt(&key, &sealed[..40]), None, "not whole blocks");
        // Without its padding block the last byte is 'f', not padding.
        assert_eq!(aes.decrypt(&key, &sealed[..32]), None, "padding");
        // Flipping the top bit of the IV's last byte flips it in the
        // padding of a one-block message: 0x0d becomes 0x8d.
        let mut sealed = aes.encrypt(&key, b"abc").expect("random IV").expect("encrypts");
        sealed[15] ^= 0x80;
        assert_eq!(aes.decrypt(&key, &sealed), None, "padding");
        let des3 = cipher("DES3");
        let sealed = des3
            .encrypt(&[4u8; 24], b"abc")
            .expect("random IV")
            .expect("encrypts");
        assert_eq!(des3.decrypt(&[4u8; 24], &sealed[..12]), None);
        assert_eq!(des3.decrypt(&[4u8; 24], &sealed[..8]), None);
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
