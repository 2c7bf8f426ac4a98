//! KMS use cases (`docs/keys.md`): the key lifecycle (scope `keys:admin`)
//! and the cryptographic operations (scope `keys:use`).
//!
//! A key is addressed by its id (`key_…`) or its name; both name one
//! aggregate (the id is derived from the name). Operations read the key
//! and its material from the replica's key ring, so they cost no database
//! round trip once warm; lifecycle commands answer only once the keys view
//! has applied them and the ring has dropped the key, so a disabled key
//! refuses the very next operation on this replica (and on the others
//! within 1 s).
//!
//! Material never leaves this layer except as the answer of an operation:
//! it is not in events, logs, errors or idempotency records.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use chrono::Utc;
use palisade_domain::key::{
    key_id_for, Algorithm, KeyCommand, KeyError, KeyName, KeyUpdate, NewKey, NewKeyVersion,
    Operation,
};
use palisade_domain::{FieldProblem, KeyId, TextLimit};
use palisade_infra::crypto::kms::{self, CryptoError, Signed};
use palisade_infra::keyring::lifecycle::{self, KeyToCreate, KeyToRotate};
use palisade_infra::keyring::usage::UsedKey;
use palisade_infra::keyring::{Lookup, MaterialError, RingKey};
use palisade_infra::readmodel::{
    get_key, list_keys, KeyFilter, KeySort, KeyWithVersions, Order, Page, Partition, Window,
};
use palisade_infra::CommandError;
use palisade_projections::{KeysProjection, Projection as _};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::auth::{KeysAdmin, KeysUse};
use super::input::{json_optional_whole as optional_whole, json_whole as whole};
use super::{App, Authorized, Error, Result};

/// The most plaintext one operation takes (64 KiB).
pub const MAX_PLAINTEXT: usize = 64 * 1024;
/// The most items of one batch.
pub const MAX_BATCH: usize = 100;
/// The most pairs of an encryption context.
pub const MAX_CONTEXT_PAIRS: usize = 32;
/// Each context name and value.
const CONTEXT_TEXT: TextLimit = TextLimit::line(256);
/// The most bytes a message to sign, verify or MAC may have (1 MiB of
/// base64 in the body is the first bound; this is the decoded one).
pub const MAX_MESSAGE: usize = 512 * 1024;

fn b64() -> &'static base64::engine::GeneralPurpose {
    &base64::engine::general_purpose::STANDARD
}

/// `Some(None)` for an explicit `null`, `None` when absent.
pub(super) fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// [`double_option`] of a whole number.
pub(super) fn double_option_whole<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Option<u32>>, D::Error> {
    optional_whole(deserializer).map(Some)
}

// ---------------------------------------------------------------- requests

/// The body of `POST /v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Unique per tenant environment: 1–128 of `A-Z a-z 0-9 . _ -`.
    #[schema(example = "payments-card-data")]
    pub name: String,
    /// `aes-256-gcm`, `chacha20-poly1305`, `hmac-sha256`, `ed25519`,
    /// `ecdsa-p256`, `ml-dsa-65` or `ml-kem-768`.
    #[schema(example = "aes-256-gcm")]
    pub algorithm: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// 90–2560 days between automatic rotations; absent or null for none.
    #[serde(default, deserialize_with = "optional_whole")]
    pub rotation_period_days: Option<u32>,
}

/// The body of `PATCH /v1/keys/{id}`: absent fields are left as they are;
/// `null` clears `description` or turns automatic rotation off.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyRequest {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "double_option_whole")]
    #[schema(value_type = Option<u32>)]
    pub rotation_period_days: Option<Option<u32>>,
    /// 1 to the latest version: older versions refuse decrypt and verify.
    #[serde(default, deserialize_with = "optional_whole")]
    pub min_decryption_version: Option<u32>,
    /// The key (id or name) that takes this one's place, e.g. its
    /// post-quantum successor in a migration plan; `null` removes the link.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub replaced_by: Option<Option<String>>,
}

/// The body of `POST /v1/keys/{id}/schedule-deletion`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDeletionRequest {
    /// 7–30 days; 30 when absent.
    #[serde(default, deserialize_with = "optional_whole")]
    pub pending_window_days: Option<u32>,
}

/// One plaintext to encrypt.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptItem {
    /// Base64, at most 64 KiB decoded.
    pub plaintext: String,
    /// Bound to the ciphertext: decrypting needs exactly the same pairs.
    #[serde(default)]
    pub context: Option<BTreeMap<String, String>>,
    /// Echoed in the batch result.
    #[serde(default)]
    pub reference: Option<String>,
}

/// The body of `POST /v1/keys/{id}/encrypt`: one item, or `batch`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EncryptRequest {
    pub plaintext: Option<String>,
    #[serde(default)]
    pub context: Option<BTreeMap<String, String>>,
    /// Up to 100 items, answered in order, each with its own error.
    pub batch: Option<Vec<EncryptItem>>,
}

/// One ciphertext to decrypt or rewrap.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CiphertextItem {
    /// `pal:v<N>:<base64>`.
    pub ciphertext: String,
    #[serde(default)]
    pub context: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub reference: Option<String>,
}

/// The body of `POST /v1/keys/{id}/decrypt` and `/rewrap`: one item, or `batch`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CiphertextRequest {
    pub ciphertext: Option<String>,
    #[serde(default)]
    pub context: Option<BTreeMap<String, String>>,
    pub batch: Option<Vec<CiphertextItem>>,
}

/// The body of `POST /v1/keys/{id}/data-key`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DataKeyRequest {
    /// 16, 32 or 64.
    #[serde(deserialize_with = "whole")]
    pub bytes: u32,
    #[serde(default)]
    pub context: Option<BTreeMap<String, String>>,
    /// Whether the answer carries the plaintext key too (default true).
    #[serde(default)]
    pub include_plaintext: Option<bool>,
}

/// The body of `POST /v1/keys/{id}/sign`: a message, or (ECDSA only) its
/// SHA-256 digest.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// Base64.
    pub message: Option<String>,
    /// Base64 of a SHA-256 digest (32 bytes); `ecdsa-p256` only.
    pub digest: Option<String>,
}

/// The body of `POST /v1/keys/{id}/verify`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub message: Option<String>,
    pub digest: Option<String>,
    /// Base64 (ASN.1 DER for ECDSA).
    pub signature: String,
    /// The version that signed; the latest when absent.
    #[serde(default, deserialize_with = "optional_whole")]
    pub key_version: Option<u32>,
}

/// The body of `POST /v1/keys/{id}/mac`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacRequest {
    /// Base64.
    pub message: String,
}

/// The body of `POST /v1/keys/{id}/mac/verify`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MacVerifyRequest {
    pub message: String,
    /// Base64 of the 32-byte MAC.
    pub mac: String,
    #[serde(default, deserialize_with = "optional_whole")]
    pub key_version: Option<u32>,
}

/// The body of `POST /v1/keys/{id}/decapsulate`.
// No `Debug`: it may hold a plaintext or a message.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecapsulateRequest {
    /// Base64 of an ML-KEM-768 ciphertext (1,088 bytes).
    pub ciphertext: String,
    /// The version whose public key encapsulated it; the latest when
    /// absent. (A ciphertext for another version yields an unrelated secret,
    /// as FIPS 203's implicit rejection specifies: name the version.)
    #[serde(default, deserialize_with = "optional_whole")]
    pub key_version: Option<u32>,
}

// ---------------------------------------------------------------- errors

impl From<KeyError> for Error {
    fn from(error: KeyError) -> Self {
        let message = error.to_string();
        match error {
            KeyError::NotFound => Error::not_found("Key not found"),
            KeyError::AlreadyExists => {
                Error::conflict("A key with this name exists in this environment")
            }
            KeyError::Invalid(problems) => Error::Validation(problems),
            KeyError::InvalidTransition { .. } => Error::InvalidTransition(capitalized(&message)),
            KeyError::RotationRaced { .. } | KeyError::NotDue { .. } => {
                Error::conflict(capitalized(&message))
            }
            KeyError::Disabled => Error::KeyDisabled("The key is disabled".into()),
            KeyError::PendingDeletion => Error::KeyPendingDeletion(
                "The key is pending deletion; cancel the deletion to use it".into(),
            ),
            KeyError::Destroyed => {
                Error::KeyDestroyed("The key is destroyed; its material is gone".into())
            }
            KeyError::VersionTooOld { .. } => Error::KeyVersionTooOld(capitalized(&message)),
            KeyError::VersionUnknown { .. } => Error::KeyVersionUnknown(capitalized(&message)),
            KeyError::UnsupportedOperation { .. } => {
                Error::UnsupportedOperation(capitalized(&message))
            }
        }
    }
}

impl From<CommandError<KeyError>> for Error {
    fn from(error: CommandError<KeyError>) -> Self {
        match error {
            CommandError::Rejected(error) => error.into(),
            other => Error::command(other, "key"),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(error: CryptoError) -> Self {
        match error {
            CryptoError::DecryptionFailed => Error::DecryptionFailed,
            CryptoError::Malformed { part, message } => Error::invalid(part, message),
            other => Error::internal(other),
        }
    }
}

impl From<MaterialError> for Error {
    fn from(error: MaterialError) -> Self {
        match error {
            // A key destroyed between the ring's read and the material's.
            MaterialError::Gone => {
                Error::KeyDestroyed("The key is destroyed; its material is gone".into())
            }
            other => Error::internal(other),
        }
    }
}

/// The first letter upper-cased (a domain error's text as a message).
pub(super) fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- helpers

/// The id of the key `id_or_name` names in the caller's partition (a name
/// derives the id), or 404 when it can be neither.
pub fn resolve(partition: &Partition, id_or_name: &str) -> Result<String> {
    key_id(partition, id_or_name).map(|id| id.to_string())
}

/// The key `id_or_name` names in the caller's partition (a name derives
/// the id), or 404.
fn key_id(partition: &Partition, id_or_name: &str) -> Result<KeyId> {
    if let Ok(id) = KeyId::parse(id_or_name) {
        return Ok(id);
    }
    let name = KeyName::parse(id_or_name).map_err(|_| Error::not_found("Key not found"))?;
    let tenant = palisade_domain::TenantId::parse(&partition.tenant_id)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(key_id_for(&tenant, partition.environment, &name))
}

fn decode(field: &str, text: &str, max: usize) -> Result<Zeroizing<Vec<u8>>> {
    // Base64 is 4 characters per 3 bytes: refuse before decoding.
    if text.len() > max.div_ceil(3) * 4 + 4 {
        return Err(Error::invalid(field, format!("at most {max} bytes")));
    }
    let bytes = b64()
        .decode(text.trim())
        .map_err(|_| Error::invalid(field, "must be base64"))?;
    if bytes.len() > max {
        return Err(Error::invalid(field, format!("at most {max} bytes")));
    }
    Ok(Zeroizing::new(bytes))
}

fn valid_context(
    field: &str,
    context: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>> {
    let Some(context) = context else {
        return Ok(BTreeMap::new());
    };
    if context.len() > MAX_CONTEXT_PAIRS {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_CONTEXT_PAIRS} pairs"),
        ));
    }
    for (name, value) in context {
        for text in [name, value] {
            // Exact bytes are bound: no trimming, but the text rule's
            // limits and alphabet.
            if text.is_empty()
                || text.chars().count() > CONTEXT_TEXT.max_chars
                || text.chars().any(char::is_control)
            {
                return Err(Error::invalid(
                    field,
                    "names and values are 1–256 characters without control characters",
                ));
            }
        }
    }
    Ok(context.clone())
}

/// The caller's key, from the ring; 404 when unknown or someone else's.
/// When the keys view is behind the key's events (it lags, or is being
/// rebuilt), waits for it, and answers 503 if it does not catch up: an
/// operation is never judged on an older state of its key.
async fn ring_key(app: &App, partition: &Partition, id_or_name: &str) -> Result<Arc<RingKey>> {
    let id = key_id(partition, id_or_name)?.to_string();
    let mut waited = false;
    loop {
        match app.keyring.key(partition, &id).await? {
            Lookup::Found(key) => return Ok(key),
            Lookup::Missing => return Err(Error::not_found("Key not found")),
            Lookup::Behind { version } if !waited => {
                waited = true;
                app.await_view(KeysProjection.name(), "Key", &id, version)
                    .await?;
            }
            Lookup::Behind { .. } => {
                return Err(Error::unavailable(
                    "the keys view is behind the key's events (catching up or rebuilding)",
                ))
            }
        }
    }
}

/// Counts one operation (or a refusal) for the key's usage.
fn count<T>(
    app: &App,
    context: &super::RequestContext,
    key: &RingKey,
    operation: Operation,
    version: u32,
    bytes: usize,
    result: &Result<T>,
) {
    let application = context.application();
    app.key_usage.record(
        UsedKey {
            key_id: &key.key.id,
            tenant_id: &key.key.tenant_id,
            environment: key.key.environment,
            version,
            operation,
            application: &application,
        },
        result.is_ok(),
        bytes as u64,
        Utc::now(),
    );
}

/// [`KeyUse::check`](palisade_domain::key::KeyUse::check), counting a
/// refusal as an error of the operation.
fn checked(
    app: &App,
    context: &super::RequestContext,
    key: &RingKey,
    operation: Operation,
    version: Option<u32>,
) -> Result<u32> {
    let checked = key
        .key
        .usage()
        .check(operation, version)
        .map_err(Error::from);
    if checked.is_err() {
        let version = version.unwrap_or(key.key.latest_version);
        count(app, context, key, operation, version, 0, &checked);
    }
    checked
}

/// The caller's key with its versions, from the keys view.
/// A replacement key: one of the partition's, not destroyed.
async fn replacement(app: &App, partition: &Partition, id_or_name: &str) -> Result<KeyId> {
    let unknown = || Error::invalid("replaced_by", "names no key of this environment");
    let id = key_id(partition, id_or_name).map_err(|_| unknown())?;
    let found = get_key(app.store.read_pool(), partition, &id.to_string())
        .await?
        .ok_or_else(unknown)?;
    if found.key.state == palisade_domain::key::KeyState::Destroyed {
        return Err(Error::invalid("replaced_by", "names a destroyed key"));
    }
    Ok(id)
}

async fn view_key(app: &App, partition: &Partition, id: &str) -> Result<KeyWithVersions> {
    get_key(app.store.read_pool(), partition, id)
        .await?
        .ok_or_else(|| Error::not_found("Key not found"))
}

// ---------------------------------------------------------------- lifecycle

/// Creates a key with version 1 and answers it as the view shows it.
pub async fn create(
    app: &App,
    context: &Authorized<KeysAdmin>,
    request: CreateKeyRequest,
) -> Result<KeyWithVersions> {
    let partition = context.principal.partition();
    let mut problems = Vec::new();
    let name = KeyName::parse(&request.name)
        .map_err(|p| problems.push(p))
        .ok();
    let algorithm = request
        .algorithm
        .trim()
        .parse::<Algorithm>()
        .map_err(|message| problems.push(FieldProblem::new("algorithm", message)))
        .ok();
    let (Some(name), Some(algorithm)) = (name, algorithm) else {
        return Err(Error::Validation(problems));
    };
    let key_id = key_id_for(&context.principal.tenant_id, partition.environment, &name);
    let metadata = context.metadata();
    let key = NewKey {
        key_id,
        tenant_id: context.principal.tenant_id,
        environment: partition.environment,
        name,
        algorithm,
        description: request.description,
        tags: request.tags,
        rotation_period_days: request.rotation_period_days,
        first_version: NewKeyVersion {
            material_id: String::new(),
            public_key: None,
        },
    };
    // The rules first, on a placeholder version, so that a bad request
    // costs no key generation.
    let mut check = key.clone();
    check.first_version = NewKeyVersion {
        material_id: "check".into(),
        public_key: algorithm.is_asymmetric().then(String::new),
    };
    palisade_domain::key::Key::default().decide(KeyCommand::Create {
        key: Box::new(check),
        at: metadata.occurred_at,
    })?;
    let request = KeyToCreate {
        key,
        at: metadata.occurred_at,
    };
    let version = lifecycle::create(
        &app.store,
        &app.commands,
        app.keyring.sealer(),
        request,
        &metadata,
    )
    .await?;
    settle(app, &key_id.to_string(), version).await?;
    view_key(app, &partition, &key_id.to_string()).await
}

/// Waits until the keys view shows the key at `version`, then drops it
/// from this replica's ring: from here on the replica uses the key as it
/// is after the command.
async fn settle(app: &App, key_id: &str, version: usize) -> Result<()> {
    let applied = app
        .await_view(KeysProjection.name(), "Key", key_id, version)
        .await;
    app.keyring.evict(&[key_id.to_string()]);
    if !applied? {
        return Err(Error::NotInEffect(
            "The change is recorded, but the keys view did not apply it within 10 s, so it is not in effect yet; retry to confirm".into(),
        ));
    }
    Ok(())
}

/// Runs a lifecycle command (only at `expected_version`, when given) and
/// answers the key as the view shows it afterwards.
async fn command(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    command: KeyCommand,
    expected_version: Option<usize>,
) -> Result<KeyWithVersions> {
    let partition = context.principal.partition();
    let id = key_id(&partition, id_or_name)?.to_string();
    // Someone else's key is unknown: the view answers for the partition.
    view_key(app, &partition, &id).await?;
    let metadata = context.metadata();
    let version = app
        .commands
        .execute_if::<palisade_domain::key::Key>(&id, command, (), &metadata, expected_version)
        .await?;
    settle(app, &id, version).await?;
    view_key(app, &partition, &id).await
}

/// Adds the next version; new operations use it.
pub async fn rotate(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
) -> Result<KeyWithVersions> {
    let partition = context.principal.partition();
    let id = key_id(&partition, id_or_name)?.to_string();
    let current = view_key(app, &partition, &id).await?;
    let metadata = context.metadata();
    let key = KeyToRotate {
        tenant_id: &partition.tenant_id,
        key_id: &id,
        algorithm: current.key.algorithm,
        latest_version: current.key.latest_version,
    };
    let (_, version) = lifecycle::rotate(
        &app.store,
        &app.commands,
        app.keyring.sealer(),
        key,
        false,
        &metadata,
        metadata.occurred_at,
    )
    .await?;
    settle(app, &id, version).await?;
    view_key(app, &partition, &id).await
}

pub async fn update(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    request: UpdateKeyRequest,
    expected_version: Option<usize>,
) -> Result<KeyWithVersions> {
    let partition = context.principal.partition();
    let replaced_by = match request.replaced_by {
        None => None,
        Some(None) => Some(None),
        Some(Some(other)) => Some(Some(replacement(app, &partition, &other).await?)),
    };
    let update = KeyUpdate {
        description: request.description,
        tags: request.tags,
        rotation_period_days: request.rotation_period_days,
        min_decryption_version: request.min_decryption_version,
        replaced_by,
    };
    let at = Utc::now();
    command(
        app,
        context,
        id_or_name,
        KeyCommand::Update { update, at },
        expected_version,
    )
    .await
}

pub async fn disable(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    expected_version: Option<usize>,
) -> Result<KeyWithVersions> {
    let at = Utc::now();
    command(
        app,
        context,
        id_or_name,
        KeyCommand::Disable { at },
        expected_version,
    )
    .await
}

pub async fn enable(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    expected_version: Option<usize>,
) -> Result<KeyWithVersions> {
    let at = Utc::now();
    command(
        app,
        context,
        id_or_name,
        KeyCommand::Enable { at },
        expected_version,
    )
    .await
}

pub async fn schedule_deletion(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    request: ScheduleDeletionRequest,
    expected_version: Option<usize>,
) -> Result<KeyWithVersions> {
    let command_ = KeyCommand::ScheduleDeletion {
        pending_window_days: request.pending_window_days,
        at: Utc::now(),
    };
    command(app, context, id_or_name, command_, expected_version).await
}

pub async fn cancel_deletion(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    expected_version: Option<usize>,
) -> Result<KeyWithVersions> {
    let at = Utc::now();
    command(
        app,
        context,
        id_or_name,
        KeyCommand::CancelDeletion { at },
        expected_version,
    )
    .await
}

/// One key of the caller's partition, by id or name, from the keys view.
pub async fn get(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
) -> Result<KeyWithVersions> {
    let partition = context.principal.partition();
    let id = key_id(&partition, id_or_name)?.to_string();
    view_key(app, &partition, &id).await
}

/// What `GET /v1/keys` asks for, parsed by the adapter.
#[derive(Debug, Clone)]
pub struct KeyQuery {
    pub filter: KeyFilter,
    pub sort: KeySort,
    pub order: Order,
}

/// A page of the caller's keys.
pub async fn list(
    app: &App,
    context: &Authorized<KeysAdmin>,
    query: &KeyQuery,
    window: impl Into<Window>,
) -> Result<Page<palisade_projections::KeyRow>> {
    let partition = context.principal.partition();
    // Free text is checked here, for every adapter.
    let mut filter = query.filter.clone();
    filter.tag = super::input::filter_text("tag", filter.tag.as_deref())?;
    filter.search = super::input::filter_text("search", filter.search.as_deref())?;
    Ok(list_keys(
        app.store.read_pool(),
        &partition,
        &filter,
        query.sort,
        query.order,
        window,
    )
    .await?)
}

/// A version's public key as a client takes it.
pub async fn public_key(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    version: Option<u32>,
) -> Result<(Algorithm, u32, kms::PublicKeyText)> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let algorithm = key.key.algorithm;
    if !algorithm.is_asymmetric() {
        return Err(Error::UnsupportedOperation(format!(
            "A {algorithm} key has no public key"
        )));
    }
    // The rule of the operation the public key serves (verify, or
    // encapsulation to be decapsulated): the key's state and minimum version.
    let serves = match algorithm {
        Algorithm::MlKem768 => Operation::Decapsulate,
        _ => Operation::Verify,
    };
    let version = key.key.usage().check(serves, version)?;
    let row = key
        .version(version)
        .ok_or_else(|| Error::internal("a version has no row"))?;
    let public = b64()
        .decode(row.public_key.as_deref().unwrap_or_default())
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok((
        algorithm,
        version,
        kms::public_key_text(algorithm, &public)?,
    ))
}

/// A key's usage, bucketed, from the keys view: the KMS usage analytics
/// of this one key (`app::kms::usage`), 404 for a key that is not the
/// caller's.
pub async fn usage(
    app: &App,
    context: &Authorized<KeysAdmin>,
    id_or_name: &str,
    bucketing: super::kms::Bucketing,
    since: Option<chrono::DateTime<Utc>>,
    until: Option<chrono::DateTime<Utc>>,
) -> Result<super::kms::UsageAnalytics> {
    let partition = context.principal.partition();
    let id = key_id(&partition, id_or_name)?.to_string();
    view_key(app, &partition, &id).await?;
    super::kms::usage(app, context, Some(id), None, bucketing, since, until).await
}

// ---------------------------------------------------------------- operations

/// One item's result in a batch: its value or its own error.
pub type ItemResult<T> = std::result::Result<T, Error>;

/// A ciphertext made by `encrypt`, `rewrap` or `data-key`.
#[derive(Debug, Clone)]
pub struct Encrypted {
    pub ciphertext: String,
    pub key_version: u32,
    pub reference: Option<String>,
}

/// A plaintext from `decrypt`.
pub struct Decrypted {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_version: u32,
    pub reference: Option<String>,
}

/// One answer or a batch of them.
pub enum Batched<T> {
    One(T),
    Batch(Vec<ItemResult<T>>),
}

fn one_or_batch<I, S>(
    single: Option<S>,
    batch: Option<Vec<I>>,
    field: &str,
) -> Result<std::result::Result<S, Vec<I>>> {
    match (single, batch) {
        (Some(single), None) => Ok(Ok(single)),
        (None, Some(batch)) => {
            if batch.is_empty() || batch.len() > MAX_BATCH {
                return Err(Error::invalid("batch", format!("1 to {MAX_BATCH} items")));
            }
            Ok(Err(batch))
        }
        (Some(_), Some(_)) => Err(Error::invalid(
            "batch",
            format!("send either {field} or batch, not both"),
        )),
        (None, None) => Err(Error::invalid(
            field,
            format!("{field} or batch is required"),
        )),
    }
}

/// Encrypts one plaintext or a batch, with the key's latest version.
pub async fn encrypt(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: EncryptRequest,
) -> Result<Batched<Encrypted>> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(app, context, &key, Operation::Encrypt, None)?;
    let single = request.plaintext.map(|p| (p, request.context));
    let shape = one_or_batch(single, request.batch, "plaintext")?;
    let material = app.keyring.material(&key, version).await?;
    let seal = |plaintext: &str, ctx: Option<&BTreeMap<String, String>>| {
        let sealed = (|| {
            let plaintext = decode("plaintext", plaintext, MAX_PLAINTEXT)?;
            let ctx = valid_context("context", ctx)?;
            let aad = kms::aad(&key.key.id, version, &ctx);
            let blob = kms::encrypt(key.key.algorithm, &material, &plaintext, &aad)?;
            Ok::<_, Error>((kms::ciphertext_text(version, &blob), plaintext.len()))
        })();
        let bytes = sealed.as_ref().map_or(0, |(_, n)| *n);
        count(
            app,
            context,
            &key,
            Operation::Encrypt,
            version,
            bytes,
            &sealed,
        );
        sealed.map(|(ciphertext, _)| ciphertext)
    };
    Ok(match shape {
        Ok((plaintext, ctx)) => Batched::One(Encrypted {
            ciphertext: seal(&plaintext, ctx.as_ref())?,
            key_version: version,
            reference: None,
        }),
        Err(items) => Batched::Batch(
            items
                .into_iter()
                .map(|item| {
                    seal(&item.plaintext, item.context.as_ref()).map(|ciphertext| Encrypted {
                        ciphertext,
                        key_version: version,
                        reference: item.reference,
                    })
                })
                .collect(),
        ),
    })
}

/// Opens one ciphertext of `key` (any version from the minimum up),
/// counting it as `operation`.
async fn open(
    app: &App,
    context: &super::RequestContext,
    key: &RingKey,
    ciphertext: &str,
    ctx: Option<&BTreeMap<String, String>>,
    operation: Operation,
) -> Result<(Zeroizing<Vec<u8>>, u32)> {
    let (version, blob) = match kms::parse_ciphertext(ciphertext.trim()) {
        Ok(parsed) => parsed,
        Err(error) => {
            let failed = Err(Error::from(error));
            count(
                app,
                context,
                key,
                operation,
                key.key.latest_version,
                0,
                &failed,
            );
            return failed;
        }
    };
    let version = checked(app, context, key, operation, Some(version))?;
    let opened = async {
        let ctx = valid_context("context", ctx)?;
        let material = app.keyring.material(key, version).await?;
        let aad = kms::aad(&key.key.id, version, &ctx);
        Ok(kms::decrypt(key.key.algorithm, &material, &blob, &aad)?)
    }
    .await;
    count(app, context, key, operation, version, blob.len(), &opened);
    opened.map(|plaintext| (plaintext, version))
}

/// Decrypts one ciphertext or a batch.
pub async fn decrypt(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: CiphertextRequest,
) -> Result<Batched<Decrypted>> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    // The state and algorithm are checked before the input: a disabled key
    // says so, whatever it is sent.
    checked(app, context, &key, Operation::Decrypt, None)?;
    let single = request.ciphertext.map(|c| (c, request.context));
    Ok(match one_or_batch(single, request.batch, "ciphertext")? {
        Ok((ciphertext, ctx)) => {
            let (plaintext, key_version) = open(
                app,
                context,
                &key,
                &ciphertext,
                ctx.as_ref(),
                Operation::Decrypt,
            )
            .await?;
            Batched::One(Decrypted {
                plaintext,
                key_version,
                reference: None,
            })
        }
        Err(items) => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let opened = open(
                    app,
                    context,
                    &key,
                    &item.ciphertext,
                    item.context.as_ref(),
                    Operation::Decrypt,
                )
                .await;
                results.push(opened.map(|(plaintext, key_version)| Decrypted {
                    plaintext,
                    key_version,
                    reference: item.reference,
                }));
            }
            Batched::Batch(results)
        }
    })
}

/// Re-encrypts ciphertexts under the key's latest version, never showing
/// the plaintext.
pub async fn rewrap(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: CiphertextRequest,
) -> Result<Batched<Encrypted>> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let latest = checked(app, context, &key, Operation::Rewrap, None)?;
    let single = request.ciphertext.map(|c| (c, request.context));
    let shape = one_or_batch(single, request.batch, "ciphertext")?;
    let material = app.keyring.material(&key, latest).await?;
    let rewrap_one =
        |ciphertext: String, ctx: Option<BTreeMap<String, String>>, reference: Option<String>| {
            let key = key.clone();
            let material = material.clone();
            async move {
                let (plaintext, _) = open(
                    app,
                    context,
                    &key,
                    &ciphertext,
                    ctx.as_ref(),
                    Operation::Rewrap,
                )
                .await?;
                let ctx = valid_context("context", ctx.as_ref())?;
                let aad = kms::aad(&key.key.id, latest, &ctx);
                let blob = kms::encrypt(key.key.algorithm, &material, &plaintext, &aad)?;
                Ok::<_, Error>(Encrypted {
                    ciphertext: kms::ciphertext_text(latest, &blob),
                    key_version: latest,
                    reference,
                })
            }
        };
    Ok(match shape {
        Ok((ciphertext, ctx)) => Batched::One(rewrap_one(ciphertext, ctx, None).await?),
        Err(items) => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                results.push(rewrap_one(item.ciphertext, item.context, item.reference).await);
            }
            Batched::Batch(results)
        }
    })
}

/// A data key: random bytes, encrypted under the key (and, when asked,
/// the bytes themselves).
pub struct DataKey {
    pub plaintext: Option<Zeroizing<Vec<u8>>>,
    pub encrypted: Encrypted,
}

pub async fn data_key(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: DataKeyRequest,
) -> Result<DataKey> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(app, context, &key, Operation::DataKey, None)?;
    let made = async {
        if ![16, 32, 64].contains(&request.bytes) {
            return Err(Error::invalid("bytes", "must be 16, 32 or 64"));
        }
        let ctx = valid_context("context", request.context.as_ref())?;
        let material = app.keyring.material(&key, version).await?;
        let bytes = kms::random_bytes(request.bytes as usize)?;
        let aad = kms::aad(&key.key.id, version, &ctx);
        let blob = kms::encrypt(key.key.algorithm, &material, &bytes, &aad)?;
        Ok(DataKey {
            plaintext: request.include_plaintext.unwrap_or(true).then_some(bytes),
            encrypted: Encrypted {
                ciphertext: kms::ciphertext_text(version, &blob),
                key_version: version,
                reference: None,
            },
        })
    }
    .await;
    count(
        app,
        context,
        &key,
        Operation::DataKey,
        version,
        request.bytes as usize,
        &made,
    );
    made
}

/// What is signed: the decoded message or digest.
fn signed_input(message: Option<&str>, digest: Option<&str>) -> Result<(Zeroizing<Vec<u8>>, bool)> {
    match (message, digest) {
        (Some(message), None) => Ok((decode("message", message, MAX_MESSAGE)?, false)),
        (None, Some(digest)) => Ok((decode("digest", digest, 64)?, true)),
        (Some(_), Some(_)) => Err(Error::invalid("digest", "send message or digest, not both")),
        (None, None) => Err(Error::invalid("message", "message or digest is required")),
    }
}

/// Signs with the latest version; returns the signature and the version.
pub async fn sign(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: SignRequest,
) -> Result<(Vec<u8>, u32)> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(app, context, &key, Operation::Sign, None)?;
    let mut size = 0;
    let signed = async {
        let (input, is_digest) =
            signed_input(request.message.as_deref(), request.digest.as_deref())?;
        size = input.len();
        let material = app.keyring.material(&key, version).await?;
        let algorithm = key.key.algorithm;
        let sign = move || {
            let signed = if is_digest {
                Signed::Digest(&input)
            } else {
                Signed::Message(&input)
            };
            kms::sign(algorithm, &material, signed)
        };
        // ML-DSA signing is milliseconds of CPU: off the async threads.
        Ok(if algorithm == Algorithm::MlDsa65 {
            tokio::task::spawn_blocking(sign)
                .await
                .map_err(|e| Error::internal(e.to_string()))??
        } else {
            sign()?
        })
    }
    .await;
    count(app, context, &key, Operation::Sign, version, size, &signed);
    signed.map(|signature| (signature, version))
}

/// Whether a signature is valid for the version named (default latest).
pub async fn verify(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: VerifyRequest,
) -> Result<bool> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(app, context, &key, Operation::Verify, request.key_version)?;
    let mut size = 0;
    let verified = (|| {
        let (input, is_digest) =
            signed_input(request.message.as_deref(), request.digest.as_deref())?;
        size = input.len();
        let signature = decode("signature", &request.signature, 8 * 1024)?;
        let row = key
            .version(version)
            .ok_or_else(|| Error::internal("a version has no row"))?;
        let public = b64()
            .decode(row.public_key.as_deref().unwrap_or_default())
            .map_err(|e| Error::internal(e.to_string()))?;
        let signed = if is_digest {
            Signed::Digest(&input)
        } else {
            Signed::Message(&input)
        };
        Ok(kms::verify(key.key.algorithm, &public, signed, &signature)?)
    })();
    count(
        app,
        context,
        &key,
        Operation::Verify,
        version,
        size,
        &verified,
    );
    verified
}

/// HMAC-SHA256 with the latest version.
pub async fn mac(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: MacRequest,
) -> Result<(Vec<u8>, u32)> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(app, context, &key, Operation::Mac, None)?;
    let mut size = 0;
    let made = async {
        let message = decode("message", &request.message, MAX_MESSAGE)?;
        size = message.len();
        let material = app.keyring.material(&key, version).await?;
        Ok(kms::mac(&material, &message)?)
    }
    .await;
    count(app, context, &key, Operation::Mac, version, size, &made);
    made.map(|mac| (mac, version))
}

pub async fn mac_verify(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: MacVerifyRequest,
) -> Result<bool> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(
        app,
        context,
        &key,
        Operation::MacVerify,
        request.key_version,
    )?;
    let mut size = 0;
    let verified = async {
        let message = decode("message", &request.message, MAX_MESSAGE)?;
        size = message.len();
        let tag = decode("mac", &request.mac, 64)?;
        let material = app.keyring.material(&key, version).await?;
        Ok(kms::mac_verify(&material, &message, &tag)?)
    }
    .await;
    count(
        app,
        context,
        &key,
        Operation::MacVerify,
        version,
        size,
        &verified,
    );
    verified
}

/// ML-KEM-768 decapsulation with the latest version.
pub async fn decapsulate(
    app: &App,
    context: &Authorized<KeysUse>,
    id_or_name: &str,
    request: DecapsulateRequest,
) -> Result<(Zeroizing<Vec<u8>>, u32)> {
    let key = ring_key(app, &context.principal.partition(), id_or_name).await?;
    let version = checked(
        app,
        context,
        &key,
        Operation::Decapsulate,
        request.key_version,
    )?;
    let mut size = 0;
    let shared = async {
        let ciphertext = decode("ciphertext", &request.ciphertext, 4096)?;
        size = ciphertext.len();
        let material = app.keyring.material(&key, version).await?;
        Ok(kms::decapsulate(&material, &ciphertext)?)
    }
    .await;
    count(
        app,
        context,
        &key,
        Operation::Decapsulate,
        version,
        size,
        &shared,
    );
    shared.map(|secret| (secret, version))
}
