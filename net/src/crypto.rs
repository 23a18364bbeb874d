//! The two primitives the protocol rests on, each behind one function so
//! that the code paths the protocol uses are the ones the Wycheproof test
//! vectors check (`net/tests/wycheproof.rs`).

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit};
use rand::{CryptoRng, RngCore};
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::Sha256;

/// AES-256-GCM with 96-bit nonces and 128-bit tags.
#[derive(Clone)]
pub struct Aead {
    cipher: Aes256Gcm,
}

/// Authentication failed: the data was altered or the key is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailed;

impl Aead {
    pub fn new(key: &[u8; 32]) -> Self {
        Aead {
            cipher: Aes256Gcm::new(&(*key).into()),
        }
    }

    /// Encrypts `buf` in place and appends the tag.
    pub fn seal(&self, nonce: &[u8; 12], ad: &[u8], buf: &mut Vec<u8>) -> Result<(), AuthFailed> {
        self.cipher
            .encrypt_in_place(&(*nonce).into(), ad, buf)
            .map_err(|_| AuthFailed)
    }

    /// Checks the tag at the end of `buf` and decrypts in place; `buf` is
    /// left as the plaintext.
    pub fn open(&self, nonce: &[u8; 12], ad: &[u8], buf: &mut Vec<u8>) -> Result<(), AuthFailed> {
        self.cipher
            .decrypt_in_place(&(*nonce).into(), ad, buf)
            .map_err(|_| AuthFailed)
    }
}

/// RSA-OAEP with SHA-256 (and MGF1-SHA-256), no label: how the host wraps
/// the session key for the viewer.
pub fn oaep_wrap<R: RngCore + CryptoRng>(
    key: &RsaPublicKey,
    rng: &mut R,
    plaintext: &[u8],
) -> Result<Vec<u8>, rsa::Error> {
    key.encrypt(rng, Oaep::new::<Sha256>(), plaintext)
}

/// The viewer's side of [`oaep_wrap`].
pub fn oaep_unwrap(key: &RsaPrivateKey, ciphertext: &[u8]) -> Result<Vec<u8>, rsa::Error> {
    key.decrypt(Oaep::new::<Sha256>(), ciphertext)
}
