//! The KMS's cryptography: generating each algorithm's material, and the
//! operations done with it (`docs/keys.md`). RustCrypto crates only; all
//! randomness from the OS (`getrandom`).
//!
//! Secret material lives in [`Material`]: zeroized on drop, never printed.
//! Public keys are plain bytes in their standard encodings (SEC1
//! uncompressed for P-256, raw 32 bytes for Ed25519, FIPS 204 / FIPS 203
//! encodings for ML-DSA-65 / ML-KEM-768).
//!
//! Key generation and ML-DSA signing take milliseconds of CPU: the
//! application layer runs them on `spawn_blocking`.

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine;
use hmac::{Hmac, Mac};
use palisade_domain::key::Algorithm;
use secrecy::{ExposeSecret, SecretBox};
use sha2::{Digest, Sha256};
use signature::{Signer, Verifier};
use zeroize::Zeroizing;

const NONCE: usize = 12;
const TAG: usize = 16;

/// Why a cryptographic operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A tampered ciphertext, the wrong key or the wrong context: one
    /// answer for all three, so the failure tells an attacker nothing.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The input is not what the algorithm takes; names the part.
    #[error("{part}: {message}")]
    Malformed { part: &'static str, message: String },
    /// The stored material does not fit its algorithm (corrupt row).
    #[error("the key material is unusable")]
    BadMaterial,
    #[error("the operating system's random source failed")]
    Random,
}

fn malformed(part: &'static str, message: impl Into<String>) -> CryptoError {
    CryptoError::Malformed {
        part,
        message: message.into(),
    }
}

/// A key version's secret half: the 32-byte key (AES, ChaCha20, HMAC), the
/// Ed25519 seed, the P-256 scalar, the ML-DSA-65 seed ξ, or the ML-KEM-768
/// seed d‖z (64 bytes). Zeroized on drop; `Debug` shows nothing.
pub struct Material(SecretBox<[u8]>);

impl Material {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBox::new(bytes.into_boxed_slice()))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }

    fn array<const N: usize>(&self) -> Result<Zeroizing<[u8; N]>, CryptoError> {
        let bytes = self.expose();
        if bytes.len() != N {
            return Err(CryptoError::BadMaterial);
        }
        let mut array = Zeroizing::new([0u8; N]);
        array.copy_from_slice(bytes);
        Ok(array)
    }
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Material(***)")
    }
}

/// `n` bytes from the operating system's random source.
pub fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    Ok(bytes)
}

/// A new version's material and, for an asymmetric algorithm, its public key.
pub struct Generated {
    pub material: Material,
    pub public_key: Option<Vec<u8>>,
}

/// Generates a new key of `algorithm` from the OS random source.
pub fn generate(algorithm: Algorithm) -> Result<Generated, CryptoError> {
    let size = match algorithm {
        Algorithm::MlKem768 => 64,
        _ => 32,
    };
    loop {
        let material = Material::from_bytes(random_bytes(size)?.to_vec());
        match public_key(algorithm, &material) {
            Ok(public_key) => {
                return Ok(Generated {
                    material,
                    public_key,
                })
            }
            // A P-256 scalar of zero or above the group order (about 2^-32
            // of draws): draw again.
            Err(CryptoError::BadMaterial) if algorithm == Algorithm::EcdsaP256 => continue,
            Err(error) => return Err(error),
        }
    }
}

/// The public key of `material`, `None` for a symmetric algorithm.
pub fn public_key(
    algorithm: Algorithm,
    material: &Material,
) -> Result<Option<Vec<u8>>, CryptoError> {
    Ok(Some(match algorithm {
        Algorithm::Aes256Gcm | Algorithm::ChaCha20Poly1305 | Algorithm::HmacSha256 => {
            material.array::<32>()?;
            return Ok(None);
        }
        Algorithm::Ed25519 => ed25519_key(material)?.verifying_key().to_bytes().to_vec(),
        Algorithm::EcdsaP256 => p256_key(material)?
            .verifying_key()
            .to_sec1_point(false)
            .as_bytes()
            .to_vec(),
        Algorithm::MlDsa65 => ml_dsa_key(material)?.verifying_key().encode().to_vec(),
        Algorithm::MlKem768 => {
            use ml_kem::KeyExport;
            ml_kem_key(material)?
                .encapsulation_key()
                .to_bytes()
                .to_vec()
        }
    }))
}

fn ed25519_key(material: &Material) -> Result<ed25519_dalek::SigningKey, CryptoError> {
    Ok(ed25519_dalek::SigningKey::from_bytes(
        &*material.array::<32>()?,
    ))
}

fn p256_key(material: &Material) -> Result<p256::ecdsa::SigningKey, CryptoError> {
    p256::ecdsa::SigningKey::from_slice(material.expose()).map_err(|_| CryptoError::BadMaterial)
}

fn ml_dsa_key(
    material: &Material,
) -> Result<ml_dsa::ExpandedSigningKey<ml_dsa::MlDsa65>, CryptoError> {
    let seed = material.array::<32>()?;
    Ok(ml_dsa::ExpandedSigningKey::from_seed(&(*seed).into()))
}

fn ml_kem_key(
    material: &Material,
) -> Result<ml_kem::DecapsulationKey<ml_kem::MlKem768>, CryptoError> {
    let seed = material.array::<64>()?;
    Ok(ml_kem::DecapsulationKey::from_seed((*seed).into()))
}

/// The additional authenticated data of an encryption: the key, the
/// version and the caller's context, each length-prefixed, the context in
/// key order. A ciphertext opens only under exactly these.
pub fn aad(key_id: &str, version: u32, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = b"palisade-kms-v1\0".to_vec();
    let mut field = |bytes: &[u8]| {
        aad.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        aad.extend_from_slice(bytes);
    };
    field(key_id.as_bytes());
    field(&version.to_be_bytes());
    for (name, value) in context {
        field(name.as_bytes());
        field(value.as_bytes());
    }
    aad
}

/// Encrypts with a random 96-bit nonce; returns nonce ‖ ciphertext ‖ tag.
pub fn encrypt(
    algorithm: Algorithm,
    material: &Material,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let nonce = random_bytes(NONCE)?;
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    let sealed =
        aead(algorithm, material, &nonce, payload, true)?.map_err(|_| CryptoError::BadMaterial)?;
    let mut out = Vec::with_capacity(NONCE + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`encrypt`] made. Every failure is
/// [`CryptoError::DecryptionFailed`].
pub fn decrypt(
    algorithm: Algorithm,
    material: &Material,
    blob: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if blob.len() < NONCE + TAG {
        return Err(CryptoError::DecryptionFailed);
    }
    let (nonce, sealed) = blob.split_at(NONCE);
    let payload = Payload { msg: sealed, aad };
    aead(algorithm, material, nonce, payload, false)?
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::DecryptionFailed)
}

/// One AEAD operation with the key's cipher: the outer error is the
/// material's, the inner the cipher's (a failed open).
fn aead(
    algorithm: Algorithm,
    material: &Material,
    nonce: &[u8],
    payload: Payload<'_, '_>,
    seal: bool,
) -> Result<Result<Vec<u8>, aes_gcm::aead::Error>, CryptoError> {
    fn with<C: KeyInit + Aead>(
        key: &[u8],
        nonce: &[u8],
        payload: Payload<'_, '_>,
        seal: bool,
    ) -> Result<Result<Vec<u8>, aes_gcm::aead::Error>, CryptoError> {
        let cipher = C::new_from_slice(key).map_err(|_| CryptoError::BadMaterial)?;
        let nonce = aes_gcm::aead::Nonce::<C>::try_from(nonce)
            .map_err(|_| CryptoError::DecryptionFailed)?;
        Ok(if seal {
            cipher.encrypt(&nonce, payload)
        } else {
            cipher.decrypt(&nonce, payload)
        })
    }
    let key = material.array::<32>()?;
    match algorithm {
        Algorithm::Aes256Gcm => with::<aes_gcm::Aes256Gcm>(&*key, nonce, payload, seal),
        Algorithm::ChaCha20Poly1305 => {
            with::<chacha20poly1305::ChaCha20Poly1305>(&*key, nonce, payload, seal)
        }
        _ => Err(CryptoError::BadMaterial),
    }
}

/// What a signature covers: the message, or (ECDSA only) its SHA-256.
#[derive(Debug, Clone, Copy)]
pub enum Signed<'a> {
    Message(&'a [u8]),
    Digest(&'a [u8]),
}

fn digest_of<'a>(
    signed: Signed<'a>,
    algorithm: Algorithm,
) -> Result<Option<&'a [u8]>, CryptoError> {
    match signed {
        Signed::Message(_) => Ok(None),
        Signed::Digest(digest) if algorithm == Algorithm::EcdsaP256 => {
            if digest.len() != 32 {
                return Err(malformed("digest", "must be a SHA-256 digest (32 bytes)"));
            }
            Ok(Some(digest))
        }
        Signed::Digest(_) => Err(malformed(
            "digest",
            format!("a {algorithm} key signs messages, not digests; send \"message\""),
        )),
    }
}

fn message<'a>(signed: Signed<'a>) -> &'a [u8] {
    match signed {
        Signed::Message(message) | Signed::Digest(message) => message,
    }
}

/// Signs: Ed25519 (64 bytes), ECDSA P-256 with SHA-256 (ASN.1 DER), or
/// ML-DSA-65 (hedged, empty context; 3,309 bytes).
pub fn sign(
    algorithm: Algorithm,
    material: &Material,
    signed: Signed<'_>,
) -> Result<Vec<u8>, CryptoError> {
    let digest = digest_of(signed, algorithm)?;
    match algorithm {
        Algorithm::Ed25519 => Ok(ed25519_key(material)?
            .sign(message(signed))
            .to_bytes()
            .to_vec()),
        Algorithm::EcdsaP256 => {
            let key = p256_key(material)?;
            let signature: p256::ecdsa::Signature = match digest {
                Some(digest) => {
                    use signature::hazmat::PrehashSigner;
                    key.sign_prehash(digest)
                        .map_err(|_| CryptoError::BadMaterial)?
                }
                None => key.sign(message(signed)),
            };
            Ok(signature.to_der().as_bytes().to_vec())
        }
        Algorithm::MlDsa65 => Ok(ml_dsa_key(material)?
            .sign_randomized(message(signed), b"", &mut getrandom::SysRng)
            .map_err(|_| CryptoError::Random)?
            .encode()
            .to_vec()),
        _ => Err(CryptoError::BadMaterial),
    }
}

/// Whether `signature` is a valid signature of `signed` by `public_key`.
/// A malformed signature is simply not valid.
pub fn verify(
    algorithm: Algorithm,
    public_key: &[u8],
    signed: Signed<'_>,
    signature: &[u8],
) -> Result<bool, CryptoError> {
    let digest = digest_of(signed, algorithm)?;
    Ok(match algorithm {
        Algorithm::Ed25519 => {
            let key: [u8; 32] = public_key
                .try_into()
                .map_err(|_| CryptoError::BadMaterial)?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map_err(|_| CryptoError::BadMaterial)?;
            match ed25519_dalek::Signature::from_slice(signature) {
                Ok(signature) => key.verify_strict(message(signed), &signature).is_ok(),
                Err(_) => false,
            }
        }
        Algorithm::EcdsaP256 => {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                .map_err(|_| CryptoError::BadMaterial)?;
            let Ok(signature) = p256::ecdsa::Signature::from_der(signature) else {
                return Ok(false);
            };
            match digest {
                Some(digest) => {
                    use signature::hazmat::PrehashVerifier;
                    key.verify_prehash(digest, &signature).is_ok()
                }
                None => key.verify(message(signed), &signature).is_ok(),
            }
        }
        Algorithm::MlDsa65 => {
            let encoded = ml_dsa::EncodedVerifyingKey::<ml_dsa::MlDsa65>::try_from(public_key)
                .map_err(|_| CryptoError::BadMaterial)?;
            let key = ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&encoded);
            let Ok(encoded) = ml_dsa::EncodedSignature::<ml_dsa::MlDsa65>::try_from(signature)
            else {
                return Ok(false);
            };
            match ml_dsa::Signature::decode(&encoded) {
                Some(signature) => key.verify_with_context(message(signed), b"", &signature),
                None => false,
            }
        }
        _ => return Err(CryptoError::BadMaterial),
    })
}

/// HMAC-SHA256 of `message` (32 bytes).
pub fn mac(material: &Material, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&*material.array::<32>()?)
        .map_err(|_| CryptoError::BadMaterial)?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}

/// Whether `tag` is the HMAC-SHA256 of `message`, compared in constant time.
pub fn mac_verify(material: &Material, message: &[u8], tag: &[u8]) -> Result<bool, CryptoError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&*material.array::<32>()?)
        .map_err(|_| CryptoError::BadMaterial)?;
    mac.update(message);
    Ok(mac.verify_slice(tag).is_ok())
}

/// ML-KEM-768 decapsulation of a 1,088-byte ciphertext: the 32-byte shared
/// secret. (A ciphertext made for another key yields an unrelated secret,
/// as FIPS 203's implicit rejection specifies.)
pub fn decapsulate(
    material: &Material,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    use ml_kem::Decapsulate;
    let key = ml_kem_key(material)?;
    let ciphertext =
        ml_kem::Ciphertext::<ml_kem::MlKem768>::try_from(ciphertext).map_err(|_| {
            malformed(
                "ciphertext",
                "must be an ML-KEM-768 ciphertext (1,088 bytes)",
            )
        })?;
    Ok(Zeroizing::new(key.decapsulate(&ciphertext).to_vec()))
}

/// A public key as a client takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyText {
    /// `spki-pem` (Ed25519, P-256), `fips204` or `fips203` (base64).
    pub format: &'static str,
    pub text: String,
}

/// SubjectPublicKeyInfo PEM for Ed25519 and P-256 (what `openssl` reads);
/// the FIPS encoding in base64 for ML-DSA-65 and ML-KEM-768.
pub fn public_key_text(
    algorithm: Algorithm,
    public_key: &[u8],
) -> Result<PublicKeyText, CryptoError> {
    use ed25519_dalek::pkcs8::EncodePublicKey;
    let pem = |result: Result<String, _>| result.map_err(|_| CryptoError::BadMaterial);
    Ok(match algorithm {
        Algorithm::Ed25519 => {
            let key: [u8; 32] = public_key
                .try_into()
                .map_err(|_| CryptoError::BadMaterial)?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&key)
                .map_err(|_| CryptoError::BadMaterial)?;
            PublicKeyText {
                format: "spki-pem",
                text: pem(key.to_public_key_pem(Default::default()))?,
            }
        }
        Algorithm::EcdsaP256 => {
            let key = p256::PublicKey::from_sec1_bytes(public_key)
                .map_err(|_| CryptoError::BadMaterial)?;
            PublicKeyText {
                format: "spki-pem",
                text: pem(key.to_public_key_pem(Default::default()))?,
            }
        }
        Algorithm::MlDsa65 => PublicKeyText {
            format: "fips204",
            text: base64::engine::general_purpose::STANDARD.encode(public_key),
        },
        Algorithm::MlKem768 => PublicKeyText {
            format: "fips203",
            text: base64::engine::general_purpose::STANDARD.encode(public_key),
        },
        _ => return Err(CryptoError::BadMaterial),
    })
}

/// A public key's fingerprint: `sha256:` and the hex SHA-256 of its bytes.
pub fn fingerprint(public_key: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(public_key)))
}

/// The text form of a ciphertext: `pal:v<N>:<base64(nonce ‖ ciphertext ‖ tag)>`.
pub fn ciphertext_text(version: u32, blob: &[u8]) -> String {
    format!(
        "pal:v{version}:{}",
        base64::engine::general_purpose::STANDARD.encode(blob)
    )
}

/// Reads [`ciphertext_text`]'s form back: the version and the bytes, or
/// which part is malformed.
pub fn parse_ciphertext(text: &str) -> Result<(u32, Vec<u8>), CryptoError> {
    let rest = text
        .strip_prefix("pal:")
        .ok_or_else(|| malformed("ciphertext", "must start with 'pal:'"))?;
    let (version, body) = rest
        .split_once(':')
        .ok_or_else(|| malformed("ciphertext", "must look like pal:v<N>:<base64>"))?;
    let version = version
        .strip_prefix('v')
        .and_then(|digits| digits.parse::<u32>().ok())
        .filter(|version| *version > 0)
        .ok_or_else(|| malformed("ciphertext", "the version must be v1, v2, …"))?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| malformed("ciphertext", "the body is not base64"))?;
    if blob.len() < NONCE + TAG {
        return Err(malformed(
            "ciphertext",
            "the body is too short to be a ciphertext",
        ));
    }
    Ok((version, blob))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_body(pem: &str) -> Vec<u8> {
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    /// The crates' shipped known-answer examples (from the IETF LAMPS
    /// drafts): the seed in the PKCS#8 file gives exactly the public key in
    /// the SPKI file. The seed is the private key's last bytes, the public
    /// key the SPKI's.
    fn known_answer(algorithm: Algorithm, private: &str, public: &str, seed: usize) {
        let private = pem_body(private);
        let public = pem_body(public);
        let material = Material::from_bytes(private[private.len() - seed..].to_vec());
        let derived = super::public_key(algorithm, &material).unwrap().unwrap();
        assert!(derived.len() > 1000);
        assert_eq!(derived[..], public[public.len() - derived.len()..]);
    }

    #[test]
    fn ml_dsa_65_and_ml_kem_768_derive_the_published_public_keys() {
        known_answer(
            Algorithm::MlDsa65,
            include_str!("vectors/ML-DSA-65-seed.priv"),
            include_str!("vectors/ML-DSA-65.pub"),
            32,
        );
        known_answer(
            Algorithm::MlKem768,
            include_str!("vectors/ML-KEM-768-seed.priv"),
            include_str!("vectors/ML-KEM-768.pub"),
            64,
        );
    }

    #[test]
    fn encryption_round_trips_and_refuses_any_change() {
        for algorithm in [Algorithm::Aes256Gcm, Algorithm::ChaCha20Poly1305] {
            let key = generate(algorithm).unwrap();
            assert!(key.public_key.is_none());
            let mut context = BTreeMap::new();
            context.insert("tenant".to_string(), "acme".to_string());
            let aad = aad("key_a", 1, &context);
            let blob = encrypt(algorithm, &key.material, b"secret", &aad).unwrap();
            assert_eq!(blob.len(), NONCE + 6 + TAG);
            assert_eq!(
                decrypt(algorithm, &key.material, &blob, &aad)
                    .unwrap()
                    .as_slice(),
                b"secret"
            );
            let mut flipped = blob.clone();
            flipped[NONCE] ^= 1;
            let other = generate(algorithm).unwrap();
            for (material, blob, aad) in [
                (&key.material, &flipped, aad.clone()),
                (
                    &key.material,
                    &blob,
                    super::aad("key_a", 1, &BTreeMap::new()),
                ),
                (&key.material, &blob, super::aad("key_b", 1, &context)),
                (&key.material, &blob, super::aad("key_a", 2, &context)),
                (&other.material, &blob, aad.clone()),
            ] {
                assert_eq!(
                    decrypt(algorithm, material, blob, &aad),
                    Err(CryptoError::DecryptionFailed)
                );
            }
        }
    }

    #[test]
    fn signatures_verify_and_a_flipped_bit_or_another_key_does_not() {
        for algorithm in [Algorithm::Ed25519, Algorithm::EcdsaP256, Algorithm::MlDsa65] {
            let key = generate(algorithm).unwrap();
            let public = key.public_key.clone().unwrap();
            let other = generate(algorithm).unwrap().public_key.unwrap();
            let signed = Signed::Message(b"release 1.2.3");
            let signature = sign(algorithm, &key.material, signed).unwrap();
            assert!(
                verify(algorithm, &public, signed, &signature).unwrap(),
                "{algorithm}"
            );
            let mut flipped = signature.clone();
            let last = flipped.len() - 1;
            flipped[last / 2] ^= 0x10;
            assert!(
                !verify(algorithm, &public, signed, &flipped).unwrap(),
                "{algorithm}"
            );
            assert!(
                !verify(algorithm, &other, signed, &signature).unwrap(),
                "{algorithm}"
            );
            assert!(!verify(
                algorithm,
                &public,
                Signed::Message(b"release 1.2.4"),
                &signature
            )
            .unwrap());
            assert!(public_key_text(algorithm, &public).is_ok());
        }
        let key = generate(Algorithm::EcdsaP256).unwrap();
        let digest = Sha256::digest(b"m");
        let by_digest = sign(Algorithm::EcdsaP256, &key.material, Signed::Digest(&digest)).unwrap();
        let public = key.public_key.unwrap();
        assert!(verify(
            Algorithm::EcdsaP256,
            &public,
            Signed::Message(b"m"),
            &by_digest
        )
        .unwrap());
        assert!(matches!(
            sign(
                Algorithm::Ed25519,
                &generate(Algorithm::Ed25519).unwrap().material,
                Signed::Digest(&digest)
            ),
            Err(CryptoError::Malformed { part: "digest", .. })
        ));
    }

    #[test]
    fn macs_verify_only_the_same_message_and_key() {
        let key = generate(Algorithm::HmacSha256).unwrap();
        let tag = mac(&key.material, b"m").unwrap();
        assert_eq!(tag.len(), 32);
        assert!(mac_verify(&key.material, b"m", &tag).unwrap());
        assert!(!mac_verify(&key.material, b"n", &tag).unwrap());
        let other = generate(Algorithm::HmacSha256).unwrap();
        assert!(!mac_verify(&other.material, b"m", &tag).unwrap());
    }

    #[test]
    fn an_ml_kem_round_trip_agrees_on_the_shared_secret() {
        use ml_kem::KeyExport;
        let key = generate(Algorithm::MlKem768).unwrap();
        let public = key.public_key.unwrap();
        assert_eq!(public.len(), 1184);
        let encapsulation = ml_kem::EncapsulationKey::<ml_kem::MlKem768>::new(
            public.as_slice().try_into().unwrap(),
        )
        .unwrap();
        let (ciphertext, shared) = encapsulation.encapsulate_deterministic(&[9u8; 32].into());
        assert_eq!(encapsulation.to_bytes().to_vec(), public);
        let decapsulated = decapsulate(&key.material, &ciphertext).unwrap();
        assert_eq!(decapsulated.as_slice(), shared.as_slice());
        assert!(decapsulate(&key.material, &ciphertext[1..]).is_err());
    }

    #[test]
    fn ciphertext_text_round_trips_and_names_the_broken_part() {
        let blob = vec![1u8; 40];
        let text = ciphertext_text(3, &blob);
        assert!(text.starts_with("pal:v3:"));
        assert_eq!(parse_ciphertext(&text).unwrap(), (3, blob));
        for bad in [
            "vault:v1:AAAA",
            "pal:v1",
            "pal:x1:AAAA",
            "pal:v0:AAAA",
            "pal:v1:!!",
            "pal:v1:AAAA",
        ] {
            assert!(
                matches!(parse_ciphertext(bad), Err(CryptoError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn material_never_prints() {
        let key = generate(Algorithm::Aes256Gcm).unwrap();
        assert_eq!(format!("{:?}", key.material), "Material(***)");
    }
}
