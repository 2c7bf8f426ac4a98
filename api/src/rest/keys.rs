//! `/v1/keys`: the KMS. Lifecycle and reads need `keys:admin`; the
//! operations (encrypt, decrypt, rewrap, data keys, sign, verify, MAC,
//! decapsulate, public keys) need `keys:use`. `{id}` is the key's id
//! (`key_…`) or its name. Responses about one key carry its version as
//! `ETag`; lifecycle commands take `If-Match`.
//!
//! Plaintexts, data keys and shared secrets are marked as secrets of their
//! answer: an idempotent replay shows them as `[redacted]`.

use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::findings::{parse_order, parse_paging};
use super::openapi::{
    BodyErrors, ErrorEnvelope, KeyErrors, KeyOperationErrors, ReadErrors, Success,
};
use super::query::{comma_list, text, time, ApiQuery};
use super::{ApiError, ApiJson, Consistency, Envelope, IfMatch};
use crate::app::auth::{KeysAdmin, KeysUse};
use crate::app::keys::{
    self, Batched, CiphertextRequest, CreateKeyRequest, DataKeyRequest, DecapsulateRequest,
    EncryptRequest, KeyQuery, MacRequest, MacVerifyRequest, ScheduleDeletionRequest, SignRequest,
    UpdateKeyRequest, VerifyRequest,
};
use crate::app::kms::Bucketing;
use crate::app::Authorized;
use crate::state::AppState;
use crate::views::keys::{
    BatchResults, CiphertextView, DataKeyView, KeyView, MacView, PlaintextView, PublicKeyView,
    SharedSecretView, SignatureView, ValidView,
};
use crate::views::kms::UsageAnalytics;
use palisade_infra::readmodel::{KeyFilter, KeySort, KeyWithVersions};

/// The routes of this resource (behind API-key authentication).
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_key, list_keys))
        .routes(routes!(get_key, update_key))
        .routes(routes!(rotate_key))
        .routes(routes!(disable_key))
        .routes(routes!(enable_key))
        .routes(routes!(schedule_deletion))
        .routes(routes!(cancel_deletion))
        .routes(routes!(key_usage))
        .routes(routes!(public_key))
        .routes(routes!(encrypt))
        .routes(routes!(decrypt))
        .routes(routes!(rewrap))
        .routes(routes!(data_key))
        .routes(routes!(sign))
        .routes(routes!(verify))
        .routes(routes!(mac))
        .routes(routes!(mac_verify))
        .routes(routes!(decapsulate))
}

fn detail(found: KeyWithVersions) -> Envelope<KeyView> {
    let version = usize::try_from(found.key.version).unwrap_or(0);
    Envelope::ok(KeyView::from(found)).with_etag(version)
}

fn key_sorts() -> utoipa::openapi::Object {
    super::openapi::one_of(&["created_at", "name", "last_used_at"])
}

/// The query of `GET /v1/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeysQuery {
    /// Comma list of `enabled`, `disabled`, `pending_deletion`, `destroyed`.
    state: Option<String>,
    /// Comma list of algorithm names.
    algorithm: Option<String>,
    /// Keys with this tag.
    tag: Option<String>,
    /// Case-insensitive part of the name.
    search: Option<String>,
    /// `created_at` (default), `name` or `last_used_at`.
    #[param(schema_with = key_sorts)]
    sort: Option<String>,
    /// `asc` or `desc` (default).
    order: Option<String>,
    #[param(value_type = Option<u32>)]
    page: Option<String>,
    /// 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    per_page: Option<String>,
    /// `strong` waits until the views reflect every earlier write.
    #[allow(dead_code)] // read by the `Consistency` extractor
    consistency: Option<String>,
}

#[utoipa::path(post, path = "/v1/keys", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Generates version 1 from the operating system's random source; the material is sealed in its own table and never shown. The name is unique per tenant environment (409 when taken).",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries by the same API key with the same Idempotency-Key and body within 24 h get the first response (Idempotent-Replayed: true)")),
    request_body = CreateKeyRequest,
    responses((status = 201, description = "The new key", body = Success<KeyView>, headers(("ETag" = String, description = "The key's version"))),
              KeyErrors, BodyErrors, (status = 409, description = "A key with this name exists", body = ErrorEnvelope)))]
pub async fn create_key(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CreateKeyRequest>,
) -> Result<Envelope<KeyView>, ApiError> {
    let found = keys::create(&state.app, &caller, request).await?;
    let version = usize::try_from(found.key.version).unwrap_or(0);
    Ok(Envelope::created(KeyView::from(found)).with_etag(version))
}

#[utoipa::path(get, path = "/v1/keys", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The caller's environment's keys.", params(KeysQuery),
    responses((status = 200, description = "A page of keys", body = Success<Vec<KeyView>>), KeyErrors, ReadErrors))]
pub async fn list_keys(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<KeysQuery>,
    _: Consistency,
) -> Result<Envelope<Vec<KeyView>>, ApiError> {
    let sort = match text(&query.sort).as_deref() {
        None | Some("created_at") => KeySort::CreatedAt,
        Some("name") => KeySort::Name,
        Some("last_used_at") => KeySort::LastUsedAt,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "sort",
                "must be one of created_at, name, last_used_at",
            ))
        }
    };
    let key_query = KeyQuery {
        filter: KeyFilter {
            state: comma_list("state", &query.state)?,
            algorithm: comma_list("algorithm", &query.algorithm)?,
            tag: query.tag.clone(),
            search: query.search.clone(),
        },
        sort,
        order: parse_order(&query.order)?,
    };
    let paging = parse_paging(&query.page, &query.per_page)?;
    let page = keys::list(&state.app, &caller, &key_query, paging).await?;
    Ok(Envelope::of_page(page, paging))
}

#[utoipa::path(get, path = "/v1/keys/{id}", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The key with its versions (never its material).",
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The key", body = Success<KeyView>, headers(("ETag" = String, description = "The key's version"))), KeyErrors, ReadErrors))]
pub async fn get_key(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Consistency,
) -> Result<Envelope<KeyView>, ApiError> {
    Ok(detail(keys::get(&state.app, &caller, &id).await?))
}

#[utoipa::path(patch, path = "/v1/keys/{id}", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Description, tags, rotation period, min_decryption_version (versions below it refuse decrypt and verify). Enabled or disabled keys only.",
    params(("id" = String, Path, description = "Key id (key_…) or name"), ("If-Match" = Option<String>, Header, description = "The key version (ETag) this command requires; 412 when it differs")),
    request_body = UpdateKeyRequest,
    responses((status = 200, description = "The key afterwards", body = Success<KeyView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn update_key(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    ApiJson(request): ApiJson<UpdateKeyRequest>,
) -> Result<Envelope<KeyView>, ApiError> {
    Ok(detail(
        keys::update(&state.app, &caller, &id, request, expected).await?,
    ))
}

macro_rules! lifecycle {
    ($name:ident, $path:literal, $description:literal, $call:expr) => {
        #[utoipa::path(post, path = $path, tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
            description = $description,
            params(("id" = String, Path, description = "Key id (key_…) or name"), ("If-Match" = Option<String>, Header, description = "The key version (ETag) this command requires; 412 when it differs"), ("Idempotency-Key" = Option<String>, Header, description = "Retries within 24 h get the first response")),
            responses((status = 200, description = "The key afterwards", body = Success<KeyView>), KeyErrors, BodyErrors, KeyOperationErrors))]
        pub async fn $name(
            caller: Authorized<KeysAdmin>,
            State(state): State<AppState>,
            Path(id): Path<String>,
            IfMatch(expected): IfMatch,
        ) -> Result<Envelope<KeyView>, ApiError> {
            let call = $call;
            Ok(detail(call(&state.app, &caller, &id, expected).await?))
        }
    };
}

lifecycle!(disable_key, "/v1/keys/{id}/disable", "Scope keys:admin. Operations answer 409 key_disabled until it is enabled again; in force on this replica before the answer, on the others within 1 s.", keys::disable);
lifecycle!(
    enable_key,
    "/v1/keys/{id}/enable",
    "Scope keys:admin. A disabled key works again.",
    keys::enable
);
lifecycle!(
    cancel_deletion,
    "/v1/keys/{id}/cancel-deletion",
    "Scope keys:admin. A key pending deletion becomes disabled (as in AWS KMS).",
    keys::cancel_deletion
);

#[utoipa::path(post, path = "/v1/keys/{id}/rotate", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. Adds version N+1; new operations use it, older ciphertexts still decrypt (from min_decryption_version up). Concurrent rotations each get their own version, numbered without gaps.",
    params(("id" = String, Path, description = "Key id (key_…) or name"), ("Idempotency-Key" = Option<String>, Header, description = "Retries within 24 h get the first response")),
    responses((status = 200, description = "The key afterwards", body = Success<KeyView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn rotate_key(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Envelope<KeyView>, ApiError> {
    Ok(detail(keys::rotate(&state.app, &caller, &id).await?))
}

#[utoipa::path(post, path = "/v1/keys/{id}/schedule-deletion", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The key is unusable at once (409 key_pending_deletion) and destroyed, with every version's material, when the window (7–30 days, default 30) ends.",
    params(("id" = String, Path, description = "Key id (key_…) or name"), ("If-Match" = Option<String>, Header, description = "The key version (ETag) this command requires; 412 when it differs")),
    request_body = ScheduleDeletionRequest,
    responses((status = 200, description = "The key afterwards", body = Success<KeyView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn schedule_deletion(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    IfMatch(expected): IfMatch,
    ApiJson(request): ApiJson<ScheduleDeletionRequest>,
) -> Result<Envelope<KeyView>, ApiError> {
    Ok(detail(
        keys::schedule_deletion(&state.app, &caller, &id, request, expected).await?,
    ))
}

/// The query of `GET /v1/keys/{id}/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    /// `hour` (default), `day` or `week` (ISO weeks, from Monday).
    granularity: Option<String>,
    /// RFC 3339; 7 days before `until` by default.
    since: Option<String>,
    /// RFC 3339; now by default. At most 366 days after `since`.
    until: Option<String>,
}

#[utoipa::path(get, path = "/v1/keys/{id}/usage", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:admin. The key's operations per bucket and operation, with a summary: `/v1/kms/analytics/usage` for this one key (from the KeyUsageRecorded events, flushed once a minute; this replica's first).",
    params(("id" = String, Path, description = "Key id (key_…) or name"), UsageQuery),
    responses((status = 200, description = "The key's usage", body = Success<UsageAnalytics>), KeyErrors, ReadErrors))]
pub async fn key_usage(
    caller: Authorized<KeysAdmin>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Envelope<UsageAnalytics>, ApiError> {
    let bucketing = Bucketing::parse(text(&query.granularity).as_deref())?;
    let since = time("since", &query.since)?;
    let until = time("until", &query.until)?;
    let usage = keys::usage(&state.app, &caller, &id, bucketing, since, until).await?;
    Ok(Envelope::ok(usage.into()))
}

/// The query of `GET /v1/keys/{id}/public-key`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PublicKeyQuery {
    /// The version; the latest by default.
    #[param(value_type = Option<u32>)]
    version: Option<String>,
}

#[utoipa::path(get, path = "/v1/keys/{id}/public-key", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. SubjectPublicKeyInfo PEM for ed25519 and ecdsa-p256 (what openssl reads); the FIPS 204 / FIPS 203 encoding in base64 for ml-dsa-65 / ml-kem-768.",
    params(("id" = String, Path, description = "Key id (key_…) or name"), PublicKeyQuery),
    responses((status = 200, description = "The public key", body = Success<PublicKeyView>), KeyErrors, ReadErrors, KeyOperationErrors))]
pub async fn public_key(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PublicKeyQuery>,
) -> Result<Envelope<PublicKeyView>, ApiError> {
    let version = match text(&query.version) {
        None => None,
        Some(text) => Some(text.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(|| {
            ApiError::invalid_field("version", "must be a version number from 1")
        })?),
    };
    let (algorithm, version, text) = keys::public_key(&state.app, &caller, &id, version).await?;
    Ok(Envelope::ok(PublicKeyView::new(algorithm, version, text)))
}

#[utoipa::path(post, path = "/v1/keys/{id}/encrypt", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. {\"plaintext\": base64 (≤ 64 KiB), \"context\"?} → {\"ciphertext\": \"pal:v<N>:…\", \"key_version\"}, or {\"batch\": [≤ 100 items]} → {\"results\": [...]} in input order, each with its value or its own error. The context is bound as additional authenticated data: decrypting needs exactly the same pairs.",
    request_body = EncryptRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The ciphertext (or the batch's results)", body = Success<CiphertextView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn encrypt(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<EncryptRequest>,
) -> Result<Envelope<serde_json::Value>, ApiError> {
    Ok(
        match keys::encrypt(&state.app, &caller, &id, request).await? {
            Batched::One(one) => Envelope::ok(json(CiphertextView::from(one))),
            Batched::Batch(items) => Envelope::ok(json(BatchResults::of_ciphertexts(items))),
        },
    )
}

fn json<T: serde::Serialize>(value: T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

#[utoipa::path(post, path = "/v1/keys/{id}/decrypt", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. A tampered ciphertext, another key's, or another context is 422 decryption_failed (one code, no detail); a version below min_decryption_version 422 key_version_too_old, above the latest 422 key_version_unknown. Batch as for encrypt.",
    request_body = CiphertextRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The plaintext (or the batch's results)", body = Success<PlaintextView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn decrypt(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CiphertextRequest>,
) -> Result<Envelope<serde_json::Value>, ApiError> {
    Ok(
        match keys::decrypt(&state.app, &caller, &id, request).await? {
            Batched::One(one) => {
                let view = PlaintextView::from(one);
                let secret = view.plaintext.clone();
                Envelope::ok(json(view)).with_secret(&secret)
            }
            Batched::Batch(items) => {
                let results = BatchResults::of_plaintexts(items);
                let secrets: Vec<String> =
                    results.plaintexts().into_iter().map(String::from).collect();
                let mut envelope = Envelope::ok(json(results));
                for secret in &secrets {
                    envelope = envelope.with_secret(secret);
                }
                envelope
            }
        },
    )
}

#[utoipa::path(post, path = "/v1/keys/{id}/rewrap", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. Decrypts and encrypts again under the latest version, in the server: the plaintext is never shown. Batch as for encrypt.",
    request_body = CiphertextRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The new ciphertext (or the batch's results)", body = Success<CiphertextView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn rewrap(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<CiphertextRequest>,
) -> Result<Envelope<serde_json::Value>, ApiError> {
    Ok(
        match keys::rewrap(&state.app, &caller, &id, request).await? {
            Batched::One(one) => Envelope::ok(json(CiphertextView::from(one))),
            Batched::Batch(items) => Envelope::ok(json(BatchResults::of_ciphertexts(items))),
        },
    )
}

#[utoipa::path(post, path = "/v1/keys/{id}/data-key", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. 16, 32 or 64 random bytes, encrypted under the key (envelope encryption); the plaintext too unless include_plaintext is false.",
    request_body = DataKeyRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The data key", body = Success<DataKeyView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn data_key(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<DataKeyRequest>,
) -> Result<Envelope<DataKeyView>, ApiError> {
    let view = DataKeyView::from(keys::data_key(&state.app, &caller, &id, request).await?);
    let secret = view.plaintext.clone();
    let envelope = Envelope::ok(view);
    Ok(match secret {
        Some(secret) => envelope.with_secret(&secret),
        None => envelope,
    })
}

#[utoipa::path(post, path = "/v1/keys/{id}/sign", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. {\"message\": base64} for every signing key, or {\"digest\": base64 SHA-256} for ecdsa-p256. Ed25519: 64 bytes; ECDSA P-256 with SHA-256: ASN.1 DER; ML-DSA-65 (FIPS 204, hedged, empty context): 3,309 bytes.",
    request_body = SignRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The signature", body = Success<SignatureView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn sign(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SignRequest>,
) -> Result<Envelope<SignatureView>, ApiError> {
    let (signature, version) = keys::sign(&state.app, &caller, &id, request).await?;
    Ok(Envelope::ok(SignatureView::new(&signature, version)))
}

#[utoipa::path(post, path = "/v1/keys/{id}/verify", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. {\"valid\": false} for a signature that does not verify (or is malformed).",
    request_body = VerifyRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "Whether the signature is valid", body = Success<ValidView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn verify(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<VerifyRequest>,
) -> Result<Envelope<ValidView>, ApiError> {
    let valid = keys::verify(&state.app, &caller, &id, request).await?;
    Ok(Envelope::ok(ValidView { valid }))
}

#[utoipa::path(post, path = "/v1/keys/{id}/mac", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. HMAC-SHA256 of the message (hmac-sha256 keys).",
    request_body = MacRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The MAC", body = Success<MacView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn mac(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<MacRequest>,
) -> Result<Envelope<MacView>, ApiError> {
    let (mac, version) = keys::mac(&state.app, &caller, &id, request).await?;
    Ok(Envelope::ok(MacView::new(&mac, version)))
}

#[utoipa::path(post, path = "/v1/keys/{id}/mac/verify", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. Compared in constant time.",
    request_body = MacVerifyRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "Whether the MAC is valid", body = Success<ValidView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn mac_verify(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<MacVerifyRequest>,
) -> Result<Envelope<ValidView>, ApiError> {
    let valid = keys::mac_verify(&state.app, &caller, &id, request).await?;
    Ok(Envelope::ok(ValidView { valid }))
}

#[utoipa::path(post, path = "/v1/keys/{id}/decapsulate", tag = "keys", security(("api_key" = []), ("bearer_api_key" = [])),
    description = "Scope keys:use. ML-KEM-768 (FIPS 203): the 32-byte shared secret of a ciphertext made with the key's public key. A ciphertext made for another key yields an unrelated secret (implicit rejection).",
    request_body = DecapsulateRequest,
    params(("id" = String, Path, description = "Key id (key_…) or name")),
    responses((status = 200, description = "The shared secret", body = Success<SharedSecretView>), KeyErrors, BodyErrors, KeyOperationErrors))]
pub async fn decapsulate(
    caller: Authorized<KeysUse>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<DecapsulateRequest>,
) -> Result<Envelope<SharedSecretView>, ApiError> {
    let (secret, version) = keys::decapsulate(&state.app, &caller, &id, request).await?;
    let view = SharedSecretView::new(&secret, version);
    let value = view.shared_secret.clone();
    Ok(Envelope::ok(view).with_secret(&value))
}
