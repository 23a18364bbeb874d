//! The two primitives the protocol rests on, checked against Project
//! Wycheproof's vectors: test cases that nobody here wrote, and that include
//! the edge cases (modified tags, malformed padding) implementations get
//! wrong. Only the parameters our protocol uses are checked: AES-256-GCM with
//! 96-bit nonces and 128-bit tags, and RSA-2048 OAEP with SHA-256 and
//! MGF1-SHA-256 and no label.
//!
//! The counts are asserted so that a vector set that silently shrank (a
//! crate update, a changed filter) fails here instead of passing vacuously.

use fernsicht_net::crypto::{Aead, AuthFailed, oaep_unwrap};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use wycheproof::{HashFunction, Mgf, TestResult};

/// Valid and invalid AES-256-GCM vectors with a 96-bit nonce and a 128-bit
/// tag in wycheproof 0.7.
const GCM_VALID: usize = 39;
const GCM_INVALID: usize = 27;

/// RSA-OAEP-2048-SHA256-MGF1-SHA256 vectors in wycheproof 0.7: those without
/// a label are checked; those with one cannot occur in our protocol.
const OAEP_VALID: usize = 10;
const OAEP_INVALID: usize = 19;
const OAEP_WITH_LABEL: usize = 8;

#[test]
fn aes_256_gcm_matches_wycheproof() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm)
        .expect("the AES-GCM vectors load");
    let (mut valid, mut invalid) = (0, 0);
    for group in set.test_groups {
        if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
            continue;
        }
        for test in group.tests {
            let id = test.tc_id;
            let key: [u8; 32] = test.key.as_slice().try_into().expect("32-byte key");
            let nonce: [u8; 12] = test.nonce.as_slice().try_into().expect("12-byte nonce");
            let aead = Aead::new(&key);
            let expected: Vec<u8> = [test.ct.as_slice(), test.tag.as_slice()].concat();

            let mut sealed = test.pt.to_vec();
            aead.seal(&nonce, &test.aad, &mut sealed)
                .expect("sealing never fails");
            let mut opened = expected.clone();
            let open_result = aead.open(&nonce, &test.aad, &mut opened);

            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    valid += 1;
                    assert_eq!(sealed, expected, "tc {id}: seal must give ct‖tag");
                    assert_eq!(open_result, Ok(()), "tc {id}: a valid vector must open");
                    assert_eq!(opened, *test.pt, "tc {id}: open must give the message");
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert_eq!(
                        open_result,
                        Err(AuthFailed),
                        "tc {id} ({}): an invalid vector must be rejected",
                        test.comment
                    );
                    assert_ne!(
                        sealed, expected,
                        "tc {id}: sealing the message cannot give an invalid ct‖tag"
                    );
                }
            }
        }
    }
    assert_eq!(
        (valid, invalid),
        (GCM_VALID, GCM_INVALID),
        "AES-256-GCM vectors checked (valid, invalid)"
    );
}

#[test]
fn rsa_oaep_2048_sha256_matches_wycheproof() {
    let set = wycheproof::rsa_oaep::TestSet::load(
        wycheproof::rsa_oaep::TestName::Rsa2048Sha256Mgf1Sha256,
    )
    .expect("the RSA-OAEP vectors load");
    let (mut valid, mut invalid, mut with_label) = (0, 0, 0);
    for group in set.test_groups {
        // The file holds only these parameters; make sure of it, since a
        // vector for another hash would fail for the wrong reason.
        assert_eq!(group.key_size, 2048);
        assert_eq!(group.hash, HashFunction::Sha2_256);
        assert_eq!(group.mgf, Mgf::Mgf1);
        assert_eq!(group.mgf_hash, HashFunction::Sha2_256);
        let key = RsaPrivateKey::from_pkcs8_der(&group.pkcs8).expect("the PKCS#8 key parses");
        for test in group.tests {
            let id = test.tc_id;
            if !test.label.is_empty() {
                // We wrap keys with an empty label; a labelled ciphertext
                // never reaches `oaep_unwrap`.
                with_label += 1;
                continue;
            }
            let result = oaep_unwrap(&key, &test.ct);
            match test.result {
                TestResult::Valid | TestResult::Acceptable => {
                    valid += 1;
                    assert_eq!(
                        result.as_deref().ok(),
                        Some(test.pt.as_slice()),
                        "tc {id} ({}): a valid vector must decrypt to its message",
                        test.comment
                    );
                }
                TestResult::Invalid => {
                    invalid += 1;
                    assert!(
                        result.is_err(),
                        "tc {id} ({}): an invalid vector must be rejected",
                        test.comment
                    );
                }
            }
        }
    }
    assert_eq!(
        (valid, invalid, with_label),
        (OAEP_VALID, OAEP_INVALID, OAEP_WITH_LABEL),
        "RSA-OAEP vectors (valid checked, invalid checked, skipped for a label)"
    );
}
