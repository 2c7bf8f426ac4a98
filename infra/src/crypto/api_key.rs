//! API key values: `pal_live_…` / `pal_test_…`, then 32 base62 characters
//! (190.5 bits from the OS CSPRNG), then a 6-character checksum, so secret
//! scanners can recognise a key and typos are refused without a lookup.
//! Only an HMAC-SHA256 of the value, under a key derived from the root key,
//! is ever stored.

use hmac::{Hmac, KeyInit, Mac};
use palisade_domain::Environment;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::RootKey;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;

/// A freshly generated key: `value` is shown once and then forgotten.
pub struct GeneratedApiKey {
    pub value: String,
    /// What lists show to tell keys apart: the environment and 4 characters.
    pub prefix: String,
}

fn head(environment: Environment) -> String {
    format!("pal_{}_", environment.as_str())
}

fn checksum(head_and_body: &str) -> String {
    let digest = Sha256::digest(head_and_body.as_bytes());
    let mut n = u64::from(u32::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]));
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn generate(environment: Environment) -> GeneratedApiKey {
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..BODY_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    let head_and_body = format!("{}{body}", head(environment));
    let value = format!("{head_and_body}{}", checksum(&head_and_body));
    let prefix = value[..head(environment).len() + 4].to_string();
    GeneratedApiKey { value, prefix }
}

/// The environment a well-formed key belongs to; None when the value is not
/// a Palisade key (wrong shape or checksum).
pub fn parse_environment(value: &str) -> Option<Environment> {
    let environment = [Environment::Live, Environment::Test]
        .into_iter()
        .find(|env| value.starts_with(&head(*env)))?;
    let rest = &value[head(environment).len()..];
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (head_and_body, sum) = value.split_at(value.len() - CHECKSUM_LEN);
    bool::from(checksum(head_and_body).as_bytes().ct_eq(sum.as_bytes())).then_some(environment)
}

/// Hashes key values for storage and lookup.
#[derive(Clone)]
pub struct ApiKeyHasher {
    key: [u8; 32],
}

impl ApiKeyHasher {
    pub fn new(root: &RootKey) -> Self {
        Self {
            key: root.derive("api-key-hash"),
        }
    }

    pub fn hash(&self, value: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Whether `value` hashes to `stored`, compared in constant time.
    pub fn matches(&self, value: &str, stored: &str) -> bool {
        bool::from(self.hash(value).as_bytes().ct_eq(stored.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = generate(Environment::Live);
        assert!(key.value.starts_with("pal_live_"));
        assert_eq!(key.value.len(), "pal_live_".len() + 32 + 6);
        assert_eq!(key.prefix, key.value[..13]);
        assert_eq!(parse_environment(&key.value), Some(Environment::Live));
        let test_key = generate(Environment::Test);
        assert_eq!(parse_environment(&test_key.value), Some(Environment::Test));
        assert_ne!(generate(Environment::Live).value, key.value);
    }

    #[test]
    fn a_key_with_a_typo_fails_its_checksum() {
        let key = generate(Environment::Live).value;
        let mut typo = key.clone().into_bytes();
        let i = "pal_live_".len() + 3;
        typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
        assert_eq!(parse_environment(&String::from_utf8(typo).unwrap()), None);
        assert_eq!(parse_environment("pal_live_short"), None);
        assert_eq!(parse_environment("sk_live_whatever"), None);
    }

    #[test]
    fn hashes_are_keyed_and_compared_exactly() {
        let root = RootKey::from_hex(&"22".repeat(32)).unwrap();
        let hasher = ApiKeyHasher::new(&root);
        let other = ApiKeyHasher::new(&RootKey::from_hex(&"33".repeat(32)).unwrap());
        let value = generate(Environment::Live).value;
        let stored = hasher.hash(&value);
        assert!(hasher.matches(&value, &stored));
        assert!(
            !other.matches(&value, &stored),
            "another root key gives another hash"
        );
        assert!(!hasher.matches(&generate(Environment::Live).value, &stored));
    }
}
