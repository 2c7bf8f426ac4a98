//! The key commands that need material: creating a key and rotating it
//! generate a new version's secret half, seal it into `key_material`, and
//! only then append the event that names it; destroying a key appends
//! `KeyDestroyed` and then deletes every row of its material. Shared by
//! the application layer and the scheduler (automatic rotation, the end of
//! a deletion window).
//!
//! A row whose event never lands (a lost race, a refused command) is
//! deleted at once; a crash between the two leaves a row that no event
//! names, which nothing ever reads and a destroy deletes with the rest.

use chrono::{DateTime, Utc};
use palisade_domain::key::{Algorithm, Key, KeyCommand, KeyError, NewKey, NewKeyVersion};
use palisade_domain::EventMetadata;

use super::material::{self, MaterialError};
use crate::crypto::kms::{self, Generated};
use crate::crypto::seal::{Binding, Sealer};
use crate::{CommandError, Commands, Store};

/// How often a rotation that lost a race to another is tried again.
const ROTATION_ATTEMPTS: usize = 200;

impl From<MaterialError> for CommandError<KeyError> {
    fn from(error: MaterialError) -> Self {
        match error {
            MaterialError::Store(error) if error.is_transient() => {
                CommandError::Unavailable(error.to_string())
            }
            MaterialError::Database(error) if crate::store::is_transient(&error) => {
                CommandError::Unavailable(error.to_string())
            }
            other => CommandError::Store(other.to_string()),
        }
    }
}

/// A new version's material, generated off the async threads (ML-DSA and
/// ML-KEM key generation take milliseconds of CPU).
async fn generate(algorithm: Algorithm) -> Result<Generated, CommandError<KeyError>> {
    tokio::task::spawn_blocking(move || kms::generate(algorithm))
        .await
        .map_err(|e| CommandError::Store(format!("key generation stopped: {e}")))?
        .map_err(|e| CommandError::Store(e.to_string()))
}

fn new_material_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn encoded(public_key: &Option<Vec<u8>>) -> Option<String> {
    use base64::Engine;
    public_key
        .as_ref()
        .map(|key| base64::engine::general_purpose::STANDARD.encode(key))
}

/// Whether a command's outcome proves its event was not appended, so that
/// the row it would have named can go. A store error leaves the outcome
/// unknown (a commit may have landed as the connection dropped): the row
/// stays, and is deleted with the key if no event names it.
fn not_appended<T>(outcome: &Result<T, CommandError<KeyError>>) -> bool {
    matches!(
        outcome,
        Err(CommandError::Rejected(_))
            | Err(CommandError::Conflict)
            | Err(CommandError::VersionMismatch { .. })
    )
}

/// The parts of a key to create that the edge decides; the material is
/// made here.
pub struct KeyToCreate {
    pub key: NewKey,
    pub at: DateTime<Utc>,
}

/// Creates a key with a fresh version 1; returns the key's version (1).
/// `key.first_version` is ignored: it is generated here.
pub async fn create(
    store: &Store,
    commands: &Commands,
    sealer: &Sealer,
    mut request: KeyToCreate,
    metadata: &EventMetadata,
) -> Result<usize, CommandError<KeyError>> {
    let generated = generate(request.key.algorithm).await?;
    let material_id = new_material_id();
    let tenant_id = request.key.tenant_id.to_string();
    let key_id = request.key.key_id.to_string();
    let binding = Binding {
        tenant_id: &tenant_id,
        key_id: &key_id,
        version: 1,
        material_id: &material_id,
    };
    material::put(store, sealer, &binding, &generated.material).await?;
    request.key.first_version = NewKeyVersion {
        material_id: material_id.clone(),
        public_key: encoded(&generated.public_key),
    };
    let command = KeyCommand::Create {
        key: Box::new(request.key),
        at: request.at,
    };
    let created = commands
        .execute::<Key>(&key_id, command, (), metadata)
        .await;
    if not_appended(&created) {
        material::forget(store, &material_id).await?;
    }
    created
}

/// The key to rotate, as the caller last saw it.
pub struct KeyToRotate<'a> {
    pub tenant_id: &'a str,
    pub key_id: &'a str,
    pub algorithm: Algorithm,
    /// The latest version the caller saw; the rotation tries the next one
    /// and follows the aggregate when another rotation got there first.
    pub latest_version: u32,
}

/// Adds the next version to a key (`automatic`: the scheduler's rotation,
/// refused unless due). Concurrent rotations each get their own version,
/// numbered without gaps. Returns the new version and the key's version
/// afterwards.
pub async fn rotate(
    store: &Store,
    commands: &Commands,
    sealer: &Sealer,
    key: KeyToRotate<'_>,
    automatic: bool,
    metadata: &EventMetadata,
    at: DateTime<Utc>,
) -> Result<(u32, usize), CommandError<KeyError>> {
    let generated = generate(key.algorithm).await?;
    let public_key = encoded(&generated.public_key);
    let mut version = key.latest_version + 1;
    for _ in 0..ROTATION_ATTEMPTS {
        let material_id = new_material_id();
        let binding = Binding {
            tenant_id: key.tenant_id,
            key_id: key.key_id,
            version,
            material_id: &material_id,
        };
        material::put(store, sealer, &binding, &generated.material).await?;
        let command = KeyCommand::Rotate {
            version,
            material: NewKeyVersion {
                material_id: material_id.clone(),
                public_key: public_key.clone(),
            },
            automatic,
            at,
        };
        let outcome = commands
            .execute::<Key>(key.key_id, command, (), metadata)
            .await;
        if not_appended(&outcome) {
            material::forget(store, &material_id).await?;
        }
        match outcome {
            Ok(aggregate_version) => return Ok((version, aggregate_version)),
            Err(CommandError::Rejected(KeyError::RotationRaced { latest })) => {
                version = latest + 1;
            }
            // Another command appended first: decide again.
            Err(CommandError::Conflict) => {}
            Err(other) => return Err(other),
        }
        tokio::task::yield_now().await;
    }
    Err(CommandError::Conflict)
}

/// Destroys a key whose deletion window has ended, then deletes its
/// material. Returns the key's version afterwards.
pub async fn destroy(
    store: &Store,
    commands: &Commands,
    key_id: &str,
    metadata: &EventMetadata,
    at: DateTime<Utc>,
) -> Result<usize, CommandError<KeyError>> {
    let version = commands
        .execute::<Key>(key_id, KeyCommand::Destroy { at }, (), metadata)
        .await?;
    material::shred(store, &[key_id.to_string()])
        .await
        .map_err(MaterialError::Database)?;
    Ok(version)
}
