//! Black-box tests of the KMS (`/v1/keys`), on both stores: the lifecycle,
//! encryption with its context, rotation and rewrap, signatures checked by
//! `openssl`, ML-KEM and ML-DSA against the RustCrypto clients, concurrent
//! rotations, and crypto-shredding by the scheduler's controllable clock.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use palisade_infra::crypto::seal::Sealer;
use palisade_infra::crypto::RootKey;
use palisade_infra::{ManualClock, Scheduler, Store};
use palisade_tests::{on_both_stores, Auth, Backend, Server};
use reqwest::Method;
use serde_json::{json, Value};

on_both_stores!(
    keys_are_created_listed_and_their_names_are_unique,
    encryption_binds_its_context_and_refuses_any_change,
    rotation_keeps_old_ciphertexts_and_rewrap_moves_them,
    openssl_verifies_ed25519_and_ecdsa_p256_signatures,
    ml_kem_and_ml_dsa_agree_with_independent_clients,
    twenty_concurrent_rotations_give_twenty_versions_without_gaps,
    lifecycle_commands_take_effect_before_they_answer,
    the_scheduler_destroys_a_key_and_its_material_when_the_window_ends,
    the_scheduler_rotates_a_key_when_its_period_elapses,
    usage_is_recorded_and_secrets_are_never_kept,
    graphql_lists_keys_and_runs_their_lifecycle,
);

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap()
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

struct Kms<'a> {
    server: &'a Server,
    key: String,
}

impl Kms<'_> {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server
            .call(method, path, Auth::ApiKey(&self.key), body)
            .await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    /// Creates a key; its id.
    async fn create(&self, name: &str, algorithm: &str) -> String {
        let (status, body) = self
            .post("/v1/keys", json!({ "name": name, "algorithm": algorithm }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["data"]["id"].as_str().unwrap().to_string()
    }

    async fn encrypt(&self, key: &str, plaintext: &[u8], context: Value) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/keys/{key}/encrypt"),
                json!({ "plaintext": b64(plaintext), "context": context }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"]["ciphertext"].as_str().unwrap().to_string()
    }

    async fn decrypt(&self, key: &str, ciphertext: &str, context: Value) -> (u16, Value) {
        self.post(
            &format!("/v1/keys/{key}/decrypt"),
            json!({ "ciphertext": ciphertext, "context": context }),
        )
        .await
    }
}

async fn kms(server: &Server) -> Kms<'_> {
    let (_, owner) = server.create_tenant("Acme", "unlimited").await;
    Kms { server, key: owner }
}

async fn keys_are_created_listed_and_their_names_are_unique(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let (status, body) = kms
        .post(
            "/v1/keys",
            json!({ "name": "payments", "algorithm": "aes-256-gcm", "tags": ["PCI"],
                    "description": "card data", "rotation_period_days": 90 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let key = &body["data"];
    assert_eq!(key["state"], "enabled");
    assert_eq!(key["latest_version"], 1);
    assert_eq!(key["tags"], json!(["pci"]));
    assert!(key["next_rotation_at"].is_string(), "{body}");
    assert_eq!(key["versions"][0]["state"], "current");
    let id = key["id"].as_str().unwrap().to_string();

    let (status, body) = kms
        .post(
            "/v1/keys",
            json!({ "name": "payments", "algorithm": "ed25519" }),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "conflict"), "{body}");
    let (status, body) = kms
        .post(
            "/v1/keys",
            json!({ "name": "bad name", "algorithm": "rsa-2048", "rotation_period_days": 10 }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let fields: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["name", "algorithm"], "{body}");
    let (status, body) = kms
        .post(
            "/v1/keys",
            json!({ "name": "k2", "algorithm": "ed25519", "rotation_period_days": 10 }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    kms.create("signer", "ed25519").await;

    // By id and by name; an unknown one is 404.
    let (status, by_name) = kms.get("/v1/keys/payments").await;
    assert_eq!(status, 200, "{by_name}");
    assert_eq!(by_name["data"]["id"], id.as_str());
    let (status, _) = kms.get(&format!("/v1/keys/{id}")).await;
    assert_eq!(status, 200);
    let (status, body) = kms.get("/v1/keys/nope").await;
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");

    let (status, body) = kms.get("/v1/keys?algorithm=ed25519").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["data"][0]["name"], "signer");
    let (_, body) = kms.get("/v1/keys?tag=pci&sort=name&order=asc").await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
    let (_, body) = kms.get("/v1/keys?search=SIGN").await;
    assert_eq!(body["data"][0]["name"], "signer", "{body}");
    let (status, body) = kms.get("/v1/keys?state=gone").await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");

    // Another tenant, and the test environment, see none of it.
    let (_, other) = server.create_tenant("Other", "pro").await;
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/v1/keys/{id}"),
            Auth::ApiKey(&other),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/v1/keys/{id}/encrypt"),
            Auth::ApiKey(&other),
            Some(json!({ "plaintext": b64(b"x") })),
        )
        .await;
    assert_eq!(status, 404);
    let (_, test_key) = server
        .issue_api_key_with(
            &kms.key,
            json!({ "name": "t", "principal": "t", "scopes": ["keys:admin", "keys:use"], "environment": "test" }),
        )
        .await;
    let (_, body) = server
        .call(Method::GET, "/v1/keys", Auth::ApiKey(&test_key), None)
        .await;
    assert_eq!(body["data"], json!([]), "{body}");

    // Scopes: a reader of findings may not touch keys.
    let (_, reader) = server
        .issue_api_key(&kms.key, "r", &["findings:read"])
        .await;
    let (status, body) = server
        .call(Method::GET, "/v1/keys", Auth::ApiKey(&reader), None)
        .await;
    assert_eq!((status, code(&body)), (403, "forbidden"), "{body}");
}

async fn encryption_binds_its_context_and_refuses_any_change(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    for algorithm in ["aes-256-gcm", "chacha20-poly1305"] {
        let key = kms.create(&format!("enc-{algorithm}"), algorithm).await;
        let other = kms.create(&format!("other-{algorithm}"), algorithm).await;
        let context = json!({ "tenant": "acme", "purpose": "invoice" });
        let ciphertext = kms.encrypt(&key, b"four score", context.clone()).await;
        assert!(ciphertext.starts_with("pal:v1:"), "{ciphertext}");

        let (status, body) = kms.decrypt(&key, &ciphertext, context.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(unb64(&body["data"]["plaintext"]), b"four score");
        assert_eq!(body["data"]["key_version"], 1);

        // Another context, none, a flipped bit, another key: one code.
        let mut flipped = unb64(&json!(ciphertext.trim_start_matches("pal:v1:")));
        flipped[14] ^= 0x01;
        let flipped = format!("pal:v1:{}", b64(&flipped));
        for (target, text, ctx) in [
            (
                &key,
                &ciphertext,
                json!({ "tenant": "acme", "purpose": "refund" }),
            ),
            (&key, &ciphertext, json!(null)),
            (&key, &flipped, context.clone()),
            (&other, &ciphertext, context.clone()),
        ] {
            let (status, body) = kms.decrypt(target, text, ctx).await;
            assert_eq!((status, code(&body)), (422, "decryption_failed"), "{body}");
            assert!(!body.to_string().contains("tag"), "no detail: {body}");
        }
        // Malformed: names the part.
        for bad in ["vault:v1:abc", "pal:vX:AAAA", "pal:v1:!!!"] {
            let (status, body) = kms.decrypt(&key, bad, json!(null)).await;
            assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
            assert_eq!(body["error"]["details"][0]["field"], "ciphertext", "{body}");
        }
        let (status, body) = kms
            .decrypt(
                &key,
                "pal:v7:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                json!(null),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (422, "key_version_unknown"),
            "{body}"
        );

        // Batch: in order, each with its own result.
        let (status, body) = kms
            .post(
                &format!("/v1/keys/{key}/decrypt"),
                json!({ "batch": [
                    { "ciphertext": ciphertext, "context": context, "reference": "a" },
                    { "ciphertext": flipped, "context": context, "reference": "b" },
                ]}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let results = body["data"]["results"].as_array().unwrap();
        assert_eq!(unb64(&results[0]["plaintext"]), b"four score");
        assert_eq!(results[0]["reference"], "a");
        assert_eq!(results[1]["error"]["code"], "decryption_failed", "{body}");

        // Bounds: 64 KiB of plaintext, 100 items.
        let (status, _) = kms
            .post(
                &format!("/v1/keys/{key}/encrypt"),
                json!({ "plaintext": b64(&vec![7u8; 64 * 1024]) }),
            )
            .await;
        assert_eq!(status, 200);
        let (status, body) = kms
            .post(
                &format!("/v1/keys/{key}/encrypt"),
                json!({ "plaintext": b64(&vec![7u8; 64 * 1024 + 1]) }),
            )
            .await;
        assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
        let items: Vec<Value> = (0..101).map(|_| json!({ "plaintext": "AA==" })).collect();
        let (status, body) = kms
            .post(
                &format!("/v1/keys/{key}/encrypt"),
                json!({ "batch": items }),
            )
            .await;
        assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");

        // A data key decrypts to its plaintext.
        let (status, body) = kms
            .post(&format!("/v1/keys/{key}/data-key"), json!({ "bytes": 32 }))
            .await;
        assert_eq!(status, 200, "{body}");
        let plaintext = unb64(&body["data"]["plaintext"]);
        assert_eq!(plaintext.len(), 32);
        let wrapped = body["data"]["ciphertext"].as_str().unwrap().to_string();
        let (_, body) = kms.decrypt(&key, &wrapped, json!(null)).await;
        assert_eq!(unb64(&body["data"]["plaintext"]), plaintext);
        let (_, body) = kms
            .post(
                &format!("/v1/keys/{key}/data-key"),
                json!({ "bytes": 16, "include_plaintext": false }),
            )
            .await;
        assert!(body["data"].get("plaintext").is_none(), "{body}");
        // A key that does not encrypt says so.
        let signer = kms.create(&format!("s-{algorithm}"), "ed25519").await;
        let (status, body) = kms
            .post(
                &format!("/v1/keys/{signer}/encrypt"),
                json!({ "plaintext": "AA==" }),
            )
            .await;
        assert_eq!(
            (status, code(&body)),
            (422, "unsupported_operation"),
            "{body}"
        );
    }
}

async fn rotation_keeps_old_ciphertexts_and_rewrap_moves_them(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let key = kms.create("rotating", "aes-256-gcm").await;
    let old = kms.encrypt(&key, b"v1 secret", json!({ "a": "b" })).await;
    let (status, body) = kms.post(&format!("/v1/keys/{key}/rotate"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["latest_version"], 2);
    let states: Vec<&str> = body["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["enabled", "current"]);
    let new = kms.encrypt(&key, b"v2 secret", json!(null)).await;
    assert!(new.starts_with("pal:v2:"), "{new}");
    let (status, body) = kms.decrypt(&key, &old, json!({ "a": "b" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(unb64(&body["data"]["plaintext"]), b"v1 secret");

    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/rewrap"),
            json!({ "ciphertext": old, "context": { "a": "b" } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rewrapped = body["data"]["ciphertext"].as_str().unwrap().to_string();
    assert!(rewrapped.starts_with("pal:v2:"), "{rewrapped}");
    assert!(body["data"].get("plaintext").is_none());
    assert!(!body.to_string().contains(&b64(b"v1 secret")), "{body}");

    // Versions below the minimum refuse; the rewrapped one decrypts.
    let (status, body) = kms
        .call(
            Method::PATCH,
            &format!("/v1/keys/{key}"),
            Some(json!({ "min_decryption_version": 2 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["versions"][0]["state"], "retired");
    let (status, body) = kms.decrypt(&key, &old, json!({ "a": "b" })).await;
    assert_eq!(
        (status, code(&body)),
        (422, "key_version_too_old"),
        "{body}"
    );
    let (status, body) = kms.decrypt(&key, &rewrapped, json!({ "a": "b" })).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(unb64(&body["data"]["plaintext"]), b"v1 secret");
    let (status, body) = kms
        .call(
            Method::PATCH,
            &format!("/v1/keys/{key}"),
            Some(json!({ "min_decryption_version": 3 })),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
}

async fn openssl_verifies_ed25519_and_ecdsa_p256_signatures(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let dir = std::env::temp_dir().join(format!("palisade-openssl-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let message = b"release 1.2.3";
    std::fs::write(dir.join("message"), message).unwrap();
    for algorithm in ["ed25519", "ecdsa-p256"] {
        let key = kms.create(algorithm, algorithm).await;
        let other = kms.create(&format!("{algorithm}-other"), algorithm).await;
        let (status, body) = kms.get(&format!("/v1/keys/{key}/public-key")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["format"], "spki-pem");
        let pem = dir.join(format!("{algorithm}.pem"));
        std::fs::write(&pem, body["data"]["pem"].as_str().unwrap()).unwrap();
        let (status, body) = kms
            .post(
                &format!("/v1/keys/{key}/sign"),
                json!({ "message": b64(message) }),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let signature = unb64(&body["data"]["signature"]);
        let signature_file = dir.join(format!("{algorithm}.sig"));
        std::fs::write(&signature_file, &signature).unwrap();
        let openssl = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl is installed")
        };
        let sig = signature_file.display().to_string();
        let pem_path = pem.display().to_string();
        let verified = match algorithm {
            "ed25519" => openssl(&[
                "pkeyutl", "-verify", "-pubin", "-inkey", &pem_path, "-rawin", "-in", "message",
                "-sigfile", &sig,
            ]),
            _ => openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                &pem_path,
                "-signature",
                &sig,
                "message",
            ]),
        };
        assert!(
            verified.status.success(),
            "openssl refused the {algorithm} signature: {}{}",
            String::from_utf8_lossy(&verified.stdout),
            String::from_utf8_lossy(&verified.stderr)
        );

        // Palisade's own verify: true; a flipped bit or another key: false.
        let verify = |key: String, signature: Vec<u8>| {
            let kms = &kms;
            async move {
                let (status, body) = kms
                    .post(
                        &format!("/v1/keys/{key}/verify"),
                        json!({ "message": b64(message), "signature": b64(&signature) }),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
                body["data"]["valid"].as_bool().unwrap()
            }
        };
        assert!(verify(key.clone(), signature.clone()).await);
        let mut flipped = signature.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x01;
        assert!(!verify(key.clone(), flipped).await);
        assert!(!verify(other.clone(), signature.clone()).await);
    }
    // ECDSA also signs a digest; ed25519 does not.
    use sha2::Digest;
    let digest = sha2::Sha256::digest(message);
    let (status, body) = kms
        .post(
            "/v1/keys/ecdsa-p256/sign",
            json!({ "digest": b64(&digest) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = kms
        .post(
            "/v1/keys/ecdsa-p256/verify",
            json!({ "message": b64(message), "signature": body["data"]["signature"] }),
        )
        .await;
    assert_eq!(body["data"]["valid"], true, "{body}");
    let (status, body) = kms
        .post("/v1/keys/ed25519/sign", json!({ "digest": b64(&digest) }))
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    std::fs::remove_dir_all(dir).unwrap();
}

async fn ml_kem_and_ml_dsa_agree_with_independent_clients(backend: &Backend) {
    use ml_kem::KeyExport;
    let server = Server::start(backend).await;
    let kms = kms(&server).await;

    // ML-KEM-768: encapsulate here with the public key, decapsulate there.
    let key = kms.create("kem", "ml-kem-768").await;
    let (status, body) = kms.get(&format!("/v1/keys/{key}/public-key")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["format"], "fips203");
    let public = unb64(&body["data"]["pem"]);
    let encapsulation =
        ml_kem::EncapsulationKey::<ml_kem::MlKem768>::new(public.as_slice().try_into().unwrap())
            .unwrap();
    assert_eq!(encapsulation.to_bytes().to_vec(), public);
    let randomness: [u8; 32] = rand::random();
    let (ciphertext, shared) = encapsulation.encapsulate_deterministic(&randomness.into());
    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/decapsulate"),
            json!({ "ciphertext": b64(&ciphertext) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(unb64(&body["data"]["shared_secret"]), shared.to_vec());
    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/decapsulate"),
            json!({ "ciphertext": b64(b"short") }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");

    // ML-DSA-65: signed there, verified here with the FIPS 204 public key.
    let key = kms.create("pq-signer", "ml-dsa-65").await;
    let (_, body) = kms.get(&format!("/v1/keys/{key}/public-key")).await;
    assert_eq!(body["data"]["format"], "fips204");
    let public = unb64(&body["data"]["pem"]);
    let message = b"post-quantum release";
    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/sign"),
            json!({ "message": b64(message) }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let signature = unb64(&body["data"]["signature"]);
    assert_eq!(signature.len(), 3309);
    let verifying =
        ml_dsa::VerifyingKey::<ml_dsa::MlDsa65>::decode(&public.as_slice().try_into().unwrap());
    let decoded =
        ml_dsa::Signature::<ml_dsa::MlDsa65>::decode(&signature.as_slice().try_into().unwrap())
            .unwrap();
    assert!(verifying.verify_with_context(message, b"", &decoded));
    assert!(!verifying.verify_with_context(b"another message", b"", &decoded));
    let (_, body) = kms
        .post(
            &format!("/v1/keys/{key}/verify"),
            json!({ "message": b64(message), "signature": b64(&signature) }),
        )
        .await;
    assert_eq!(body["data"]["valid"], true, "{body}");
}

async fn twenty_concurrent_rotations_give_twenty_versions_without_gaps(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let key = kms.create("busy", "ed25519").await;
    let path = format!("/v1/keys/{key}/rotate");
    let rotations = (0..20).map(|_| kms.post(&path, json!({})));
    for (status, body) in futures_util::future::join_all(rotations).await {
        assert_eq!(status, 200, "{body}");
    }
    let (_, body) = kms.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(body["data"]["latest_version"], 21, "{body}");
    let versions: Vec<u64> = body["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, (1..=21).collect::<Vec<u64>>());
    // Each version has its own public key.
    let fingerprints: std::collections::HashSet<&str> = body["data"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["public_key_fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints.len(), 21);
    // Every version signs what its own public key verifies.
    let (_, body) = kms
        .post(
            &format!("/v1/keys/{key}/sign"),
            json!({ "message": b64(b"m") }),
        )
        .await;
    assert_eq!(body["data"]["key_version"], 21);
}

async fn lifecycle_commands_take_effect_before_they_answer(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let key = kms.create("life", "aes-256-gcm").await;
    let ciphertext = kms.encrypt(&key, b"x", json!(null)).await;

    let (status, body) = kms
        .post(&format!("/v1/keys/{key}/disable"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state"], "disabled");
    let (status, body) = kms.decrypt(&key, &ciphertext, json!(null)).await;
    assert_eq!((status, code(&body)), (409, "key_disabled"), "{body}");
    let (status, body) = kms.post(&format!("/v1/keys/{key}/rotate"), json!({})).await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{body}"
    );

    let (status, _) = kms.post(&format!("/v1/keys/{key}/enable"), json!({})).await;
    assert_eq!(status, 200);
    let (status, _) = kms.decrypt(&key, &ciphertext, json!(null)).await;
    assert_eq!(status, 200);

    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/schedule-deletion"),
            json!({ "pending_window_days": 6 }),
        )
        .await;
    assert_eq!((status, code(&body)), (422, "validation_error"), "{body}");
    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/schedule-deletion"),
            json!({ "pending_window_days": 7 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state"], "pending_deletion");
    assert!(body["data"]["deletion_date"].is_string(), "{body}");
    let (status, body) = kms.decrypt(&key, &ciphertext, json!(null)).await;
    assert_eq!(
        (status, code(&body)),
        (409, "key_pending_deletion"),
        "{body}"
    );
    let (status, body) = kms.post(&format!("/v1/keys/{key}/enable"), json!({})).await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");

    let (status, body) = kms
        .post(&format!("/v1/keys/{key}/cancel-deletion"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state"], "disabled", "AWS semantics: {body}");
    assert!(body["data"]["deletion_date"].is_null(), "{body}");

    // If-Match: a stale version is 412.
    let (status, body) = server
        .call_with_headers(
            Method::POST,
            &format!("/v1/keys/{key}/enable"),
            Auth::ApiKey(&kms.key),
            &[("if-match", "\"1\"")],
            None,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (412, "precondition_failed"),
        "{body}"
    );
}

/// The server's root key, for a scheduler in this process that seals as it does.
fn sealer_of(backend: &Backend) -> Sealer {
    let (root, _) = RootKey::load(None, &backend.config().data_dir).unwrap();
    Sealer::new(&root)
}

async fn scheduler_at(backend: &Backend, clock: Arc<ManualClock>) -> (Store, Scheduler) {
    let store = Store::open(&backend.config()).await.unwrap();
    let scheduler = Scheduler::new(
        store.clone(),
        sealer_of(backend),
        clock,
        Duration::from_secs(1),
    );
    (store, scheduler)
}

/// Polls `check` every 20 ms for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn the_scheduler_destroys_a_key_and_its_material_when_the_window_ends(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let key = kms.create("doomed", "aes-256-gcm").await;
    kms.post(&format!("/v1/keys/{key}/rotate"), json!({})).await;
    let survivor = kms.create("survivor", "aes-256-gcm").await;
    let ciphertext = kms.encrypt(&key, b"shred me", json!(null)).await;
    let (status, body) = kms
        .post(
            &format!("/v1/keys/{key}/schedule-deletion"),
            json!({ "pending_window_days": 7 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let deletion: chrono::DateTime<chrono::Utc> = body["data"]["deletion_date"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    let (store, scheduler) = scheduler_at(
        backend,
        Arc::new(ManualClock::new(deletion - chrono::Duration::hours(1))),
    )
    .await;
    let sealed: Vec<String> =
        sqlx::query_scalar("SELECT sealed FROM key_material WHERE key_id = $1 ORDER BY version")
            .bind(&key)
            .fetch_all(store.read_pool())
            .await
            .unwrap();
    assert_eq!(sealed.len(), 2, "one sealed row per version");
    scheduler.tick().await.unwrap();
    let (status, body) = kms.get(&format!("/v1/keys/{key}")).await;
    assert_eq!(
        body["data"]["state"], "pending_deletion",
        "not yet due: {status} {body}"
    );

    drop(scheduler);
    // The answer shows times to the millisecond; the store keeps microseconds.
    let ended = deletion + chrono::Duration::seconds(1);
    let (_, scheduler) = scheduler_at(backend, Arc::new(ManualClock::new(ended))).await;
    scheduler.tick().await.unwrap();
    eventually("the key is destroyed in the view", || async {
        kms.get(&format!("/v1/keys/{key}")).await.1["data"]["state"] == "destroyed"
    })
    .await;
    // The server drops it from its ring within a second, then 410.
    eventually("decrypt answers 410", || async {
        kms.decrypt(&key, &ciphertext, json!(null)).await.0 == 410
    })
    .await;
    let (status, body) = kms.decrypt(&key, &ciphertext, json!(null)).await;
    assert_eq!((status, code(&body)), (410, "key_destroyed"), "{body}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_material WHERE key_id = $1")
        .bind(&key)
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "the rows are gone");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM key_material WHERE key_id = $1")
        .bind(&survivor)
        .fetch_one(store.read_pool())
        .await
        .unwrap();
    assert_eq!(kept, 1, "another key keeps its material");
    if backend.kind() == "sqlite" {
        // Neither the database file nor its log holds the sealed rows.
        let dir = backend.config().data_dir;
        for file in ["palisade.db", "palisade.db-wal", "palisade.db-shm"] {
            let Ok(bytes) = std::fs::read(dir.join(file)) else {
                continue;
            };
            for row in &sealed {
                let needle = &row.as_bytes()[..48];
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{file} still holds a destroyed key's sealed material"
                );
            }
        }
    }
    // Destroyed is final.
    let (status, body) = kms
        .post(&format!("/v1/keys/{key}/cancel-deletion"), json!({}))
        .await;
    assert_eq!((status, code(&body)), (409, "invalid_transition"), "{body}");
    store.close().await;
}

async fn the_scheduler_rotates_a_key_when_its_period_elapses(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let (status, body) = kms
        .post(
            "/v1/keys",
            json!({ "name": "auto", "algorithm": "ecdsa-p256", "rotation_period_days": 90 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let key = body["data"]["id"].as_str().unwrap().to_string();
    let due: chrono::DateTime<chrono::Utc> = body["data"]["next_rotation_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let clock = Arc::new(ManualClock::new(due - chrono::Duration::minutes(1)));
    let (store, scheduler) = scheduler_at(backend, clock.clone()).await;
    scheduler.tick().await.unwrap();
    assert_eq!(
        kms.get(&format!("/v1/keys/{key}")).await.1["data"]["latest_version"],
        1
    );
    // The answer shows times to the millisecond; the store keeps microseconds.
    clock.set(due + chrono::Duration::seconds(1));
    scheduler.tick().await.unwrap();
    eventually("version 2 appears", || async {
        kms.get(&format!("/v1/keys/{key}")).await.1["data"]["latest_version"] == 2
    })
    .await;
    let (_, body) = kms.get(&format!("/v1/keys/{key}")).await;
    let next: chrono::DateTime<chrono::Utc> = body["data"]["next_rotation_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let expected = due + chrono::Duration::days(90) + chrono::Duration::seconds(1);
    assert!((next - expected).num_milliseconds().abs() < 1000, "{body}");
    // A second pass at the same time does nothing more.
    scheduler.tick().await.unwrap();
    eventually("the server signs with version 2", || async {
        kms.post(
            &format!("/v1/keys/{key}/sign"),
            json!({ "message": "AA==" }),
        )
        .await
        .1["data"]["key_version"]
            == 2
    })
    .await;
    assert_eq!(
        kms.get(&format!("/v1/keys/{key}")).await.1["data"]["latest_version"],
        2
    );
    store.close().await;
}

async fn usage_is_recorded_and_secrets_are_never_kept(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let key = kms.create("counted", "aes-256-gcm").await;
    let secret = b"the secret plaintext 0123456789";
    let ciphertext = kms.encrypt(&key, secret, json!(null)).await;
    kms.encrypt(&key, b"again", json!(null)).await;
    let (status, refused) = kms
        .decrypt(&key, &ciphertext, json!({ "wrong": "context" }))
        .await;
    assert_eq!(status, 422);
    assert!(
        !refused.to_string().contains(&b64(secret)),
        "an error body holds it: {refused}"
    );
    // An idempotent decrypt: the replay shows the plaintext redacted.
    let body = json!({ "ciphertext": ciphertext });
    let path = format!("/v1/keys/{key}/decrypt");
    let (status, replayed, first) = server
        .post_idempotent(&path, &kms.key, "dec-1", &body)
        .await;
    assert_eq!((status, replayed), (200, false), "{first}");
    assert_eq!(unb64(&first["data"]["plaintext"]), secret, "{first}");
    let (status, replayed, replay) = server
        .post_idempotent(&path, &kms.key, "dec-1", &body)
        .await;
    assert_eq!((status, replayed), (200, true), "{replay}");
    assert_eq!(replay["data"]["plaintext"], "[redacted]", "{replay}");

    let (status, body) = kms
        .call_app(&format!("/v1/keys/{key}/usage?granularity=day"), "billing")
        .await;
    assert_eq!(status, 200, "{body}");
    let count_of = |operation: &str, field: &str| -> i64 {
        body["data"]["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["operation"] == operation)
            .map(|b| b[field].as_i64().unwrap())
            .sum()
    };
    assert_eq!(count_of("encrypt", "count"), 2, "{body}");
    // The replay answered from the record: it decrypted nothing.
    assert_eq!(count_of("decrypt", "count"), 1, "{body}");
    assert_eq!(count_of("decrypt", "errors"), 1, "{body}");
    // The usage is in the audit trail as an event; no audit record, event or
    // idempotency record holds the plaintext or the material.
    let (_, audit) = kms
        .get("/v1/audit/events?limit=100&aggregate_type=KeyUsage&consistency=strong")
        .await;
    assert!(audit.to_string().contains("KeyUsageRecorded"), "{audit}");
    let (_, timeline) = kms.get("/v1/timeline?consistency=strong").await;
    let types: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"KeyCreated"), "{timeline}");
    // Usage is in the audit trail, not on the timeline (one entry a minute
    // per key would bury everything else).
    assert!(!types.contains(&"KeyUsageRecorded"), "{timeline}");
    // Usage is not a change of the key: its version (ETag) is still 1.
    let (_, key_body) = kms.get(&format!("/v1/keys/{key}")).await;
    assert!(key_body["data"]["last_used_at"].is_string(), "{key_body}");
    let store = Store::open(&backend.config()).await.unwrap();
    let needle = b64(secret);
    for (table, column) in [
        ("events", "payload"),
        ("audit_events", "data"),
        ("idempotency_keys", "response_body"),
    ] {
        let sql = format!("SELECT CAST({column} AS TEXT) FROM {table}");
        let rows: Vec<Option<String>> =
            match sqlx::query_scalar(&sql).fetch_all(store.read_pool()).await {
                Ok(rows) => rows,
                Err(error) => panic!("{table}.{column}: {error}"),
            };
        for row in rows.into_iter().flatten() {
            assert!(!row.contains(&needle), "{table} holds a plaintext: {row}");
        }
    }
    let sealed: Vec<String> = sqlx::query_scalar("SELECT sealed FROM key_material")
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    let events: Vec<String> = sqlx::query_scalar("SELECT CAST(payload AS TEXT) FROM events")
        .fetch_all(store.read_pool())
        .await
        .unwrap();
    for row in &sealed {
        assert!(events.iter().all(|e| !e.contains(row.as_str())));
    }
    // Nor does any line the server logged (every request's access line,
    // the warnings): neither the plaintext nor a sealed row.
    let log = server.log();
    assert!(
        !log.contains(&needle) && !log.contains("the secret plaintext"),
        "the log holds the plaintext"
    );
    for row in &sealed {
        assert!(!log.contains(row.as_str()), "the log holds sealed material");
    }
    store.close().await;
}

impl Kms<'_> {
    /// A GET naming the calling application.
    async fn call_app(&self, path: &str, application: &str) -> (u16, Value) {
        self.server
            .call_with_headers(
                Method::GET,
                path,
                Auth::ApiKey(&self.key),
                &[("x-palisade-application", application)],
                None,
            )
            .await
    }
}

async fn graphql_lists_keys_and_runs_their_lifecycle(backend: &Backend) {
    let server = Server::start(backend).await;
    let kms = kms(&server).await;
    let graphql = |query: &str| {
        let body = json!({ "query": query });
        let kms = &kms;
        async move { kms.post("/graphql", body).await }
    };
    let (status, body) = graphql(
        r#"mutation { createKey(input: { name: "gql", algorithm: "ml-dsa-65", tags: ["pq"] }) { id name algorithm state latestVersion } }"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["createKey"]["algorithm"], "ml-dsa-65",
        "{body}"
    );
    let (_, body) = graphql(r#"mutation { rotateKey(id: "gql") { latestVersion } }"#).await;
    assert_eq!(body["data"]["rotateKey"]["latestVersion"], 2, "{body}");
    kms.post("/v1/keys/gql/sign", json!({ "message": "AA==" }))
        .await;
    let (_, body) = graphql(
        r#"{ keys(algorithm: ["ml-dsa-65"]) { totalCount nodes { name versions { version state publicKeyFingerprint } usage(granularity: DAY) { summary { totalOperations } } } } }"#,
    )
    .await;
    let keys = &body["data"]["keys"];
    assert_eq!(keys["totalCount"], 1, "{body}");
    let node = &keys["nodes"][0];
    assert_eq!(node["versions"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(node["versions"][1]["state"], "current", "{body}");
    assert_eq!(node["usage"]["summary"]["totalOperations"], 1, "{body}");
    let (_, body) = graphql(r#"mutation { disableKey(id: "gql") { state } }"#).await;
    assert_eq!(body["data"]["disableKey"]["state"], "disabled", "{body}");
    let (status, body) = kms
        .post("/v1/keys/gql/sign", json!({ "message": "AA==" }))
        .await;
    assert_eq!((status, code(&body)), (409, "key_disabled"), "{body}");
    let (_, body) = graphql(r#"mutation { enableKey(id: "nope") { state } }"#).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "not_found",
        "{body}"
    );
    let (_, body) = graphql(r#"{ key(id: "nope") { id } }"#).await;
    assert!(body["data"]["key"].is_null(), "{body}");
}

/// This process's KMS key lookups answered from its key ring.
async fn ring_hits(server: &Server) -> u64 {
    let metrics = server.metrics().await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("palisade_kms_key_lookups_total{result=\"hit\"} "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no key ring hits in the metrics:\n{metrics}"))
}

/// Two replicas on one PostgreSQL: a key disabled, scheduled for deletion
/// or rotated through one is in force on the other within a second, though
/// the other served the key from its ring just before.
#[tokio::test]
async fn another_replica_sees_a_key_change_within_a_second() {
    let Some(backend) = Backend::postgres().await else {
        return;
    };
    let options = || palisade_tests::ServerOptions {
        admin_token: Some("tok".into()),
        ..Default::default()
    };
    let first = Server::start_with(&backend, options()).await;
    let second = Server::start_with(&backend, options()).await;
    let (_, owner) = first.create_tenant("Acme", "unlimited").await;
    let on_first = Kms {
        server: &first,
        key: owner.clone(),
    };
    let on_second = Kms {
        server: &second,
        key: owner.clone(),
    };
    let key = on_first.create("shared", "aes-256-gcm").await;
    // The second replica serves the key from its ring (its follower may
    // first drop a fill made before it saw the key's creation).
    let ciphertext = on_second.encrypt(&key, b"x", json!(null)).await;
    let since = std::time::Instant::now();
    loop {
        let before = ring_hits(&second).await;
        on_second.encrypt(&key, b"x", json!(null)).await;
        if ring_hits(&second).await > before {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(5),
            "the second replica does not serve the key from its ring after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    async fn until(
        kms: &Kms<'_>,
        path: &str,
        body: Value,
        done: impl Fn(u16, &Value) -> bool,
    ) -> Duration {
        let since = std::time::Instant::now();
        loop {
            let (status, answer) = kms.post(path, body.clone()).await;
            if done(status, &answer) {
                return since.elapsed();
            }
            assert!(
                since.elapsed() < Duration::from_secs(5),
                "the second replica still answers {status} {answer}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let encrypt = format!("/v1/keys/{key}/encrypt");
    let plaintext = json!({ "plaintext": "AA==" });

    on_first
        .post(&format!("/v1/keys/{key}/rotate"), json!({}))
        .await;
    let rotated = until(&on_second, &encrypt, plaintext.clone(), |_, body| {
        body["data"]["key_version"] == 2
    })
    .await;
    on_first
        .post(&format!("/v1/keys/{key}/disable"), json!({}))
        .await;
    let disabled = until(&on_second, &encrypt, plaintext.clone(), |status, _| {
        status == 409
    })
    .await;
    on_first
        .post(&format!("/v1/keys/{key}/enable"), json!({}))
        .await;
    until(&on_second, &encrypt, plaintext.clone(), |status, _| {
        status == 200
    })
    .await;
    on_first
        .post(&format!("/v1/keys/{key}/schedule-deletion"), json!({}))
        .await;
    let pending = until(
        &on_second,
        &format!("/v1/keys/{key}/decrypt"),
        json!({ "ciphertext": ciphertext }),
        |status, body| status == 409 && code(body) == "key_pending_deletion",
    )
    .await;
    eprintln!("second replica: rotated after {rotated:?}, disabled after {disabled:?}, pending deletion after {pending:?}");
    for (what, took) in [
        ("rotation", rotated),
        ("disable", disabled),
        ("deletion", pending),
    ] {
        assert!(
            took <= Duration::from_secs(1),
            "{what} reached the other replica after {took:?}"
        );
    }
}
