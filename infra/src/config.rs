//! Configuration: one struct, read from `PALISADE_*` environment variables
//! with defaults, validated at start. The README's configuration table lists
//! the same variables; [`Config::KNOWN`] is what unknown names are checked against.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

/// A configured secret (the admin token, the root key, a database URL that
/// may hold a password). It never prints itself: `Debug` and `Display`
/// show `[redacted]`, so no log line or panic message can leak it; the
/// value is read with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded store and generated files live (`PALISADE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; unset selects embedded SQLite.
    /// A secret: the URL may carry a password.
    pub database_url: Option<Secret>,
    pub bind: SocketAddr,
    /// The admin token; when unset it is generated into `data_dir/admin-token`.
    pub admin_token: Option<Secret>,
    /// 64 hex digits; when unset it is generated into `data_dir/root-key`.
    pub root_key: Option<Secret>,
    pub log_format: LogFormat,
    /// Snapshot every N events, per aggregate type (`PALISADE_SNAPSHOTS=Tenant=100`).
    pub snapshots: HashMap<String, usize>,
    /// Fallback poll of the feed when no wake-up arrives.
    pub feed_poll: Duration,
    /// Events a projection applies per transaction.
    pub projection_batch: usize,
    /// How many groups the projections run in (each one task, one
    /// transaction per batch for its members; see `projection/group.rs`).
    pub projection_groups: usize,
    /// How often a replica that does not hold a projection's lock tries to take it.
    pub projection_lock_retry: Duration,
    pub db_max_connections: u32,
    /// How long a request waits for a pooled connection (PostgreSQL).
    pub db_acquire_timeout: Duration,
    /// How often the scheduler looks for due commands.
    pub scheduler_interval: Duration,
    /// How long a `?consistency=strong` read waits for the projections.
    pub strong_read_timeout: Duration,
    /// How often an idle audit stream (SSE) sends a heartbeat comment.
    pub sse_heartbeat: Duration,
    /// Statements slower than this are logged as warnings (truncated).
    pub slow_statement: Duration,
    /// How many ingestion jobs one replica runs at once.
    pub ingest_concurrency: usize,
    /// Whether webhooks may be sent to loopback, private, link-local and
    /// other non-public addresses (tests, local setups; logged at start).
    pub webhooks_allow_private: bool,
    /// Whether this replica runs webhook senders (every replica may: they
    /// claim deliveries under a lease).
    pub webhooks_send: bool,
    /// PEM certificates trusted for `https://` endpoints besides the
    /// built-in public roots (a private CA; the tests' own).
    pub webhooks_ca_file: Option<PathBuf>,
}

impl Config {
    /// Every variable this build understands.
    pub const KNOWN: &'static [&'static str] = &[
        "PALISADE_DATA_DIR",
        "PALISADE_DATABASE_URL",
        "PALISADE_BIND",
        "PALISADE_ADMIN_TOKEN",
        "PALISADE_ROOT_KEY",
        "PALISADE_LOG_FORMAT",
        "PALISADE_SNAPSHOTS",
        "PALISADE_FEED_POLL_MS",
        "PALISADE_PROJECTION_BATCH",
        "PALISADE_PROJECTION_GROUPS",
        "PALISADE_PROJECTION_LOCK_RETRY_MS",
        "PALISADE_DB_MAX_CONNECTIONS",
        "PALISADE_DB_ACQUIRE_TIMEOUT_MS",
        "PALISADE_SCHEDULER_INTERVAL_MS",
        "PALISADE_STRONG_READ_TIMEOUT_MS",
        "PALISADE_SSE_HEARTBEAT_MS",
        "PALISADE_SLOW_STATEMENT_MS",
        "PALISADE_INGEST_CONCURRENCY",
        "PALISADE_WEBHOOKS_ALLOW_PRIVATE",
        "PALISADE_WEBHOOKS_SEND",
        "PALISADE_WEBHOOKS_CA_FILE",
        // Read by `palisade import` (a client), not the server.
        "PALISADE_URL",
        "PALISADE_API_KEY",
        // Read by the test suite, not the server.
        "PALISADE_TEST_DATABASE_URL",
        "PALISADE_REQUIRE_POSTGRES",
        "PALISADE_TEST_STANDARDWEBHOOKS_PYTHON",
        "PALISADE_BIN",
    ];

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// `PALISADE_*` variables that are set but mean nothing to this build.
    pub fn unknown_variables() -> Vec<String> {
        std::env::vars()
            .map(|(name, _)| name)
            .filter(|name| name.starts_with("PALISADE_") && !Self::KNOWN.contains(&name.as_str()))
            .collect()
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let database_url = get("PALISADE_DATABASE_URL");
        if let Some(url) = &database_url {
            if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                return Err(ConfigError {
                    variable: "PALISADE_DATABASE_URL",
                    message: "must be a postgres:// URL (leave it unset for embedded SQLite)"
                        .into(),
                });
            }
        }
        Ok(Self {
            data_dir: PathBuf::from(get("PALISADE_DATA_DIR").unwrap_or_else(|| "./data".into())),
            database_url: database_url.map(Secret::new),
            bind: parse(&get, "PALISADE_BIND", "127.0.0.1:8080")?,
            admin_token: get("PALISADE_ADMIN_TOKEN").map(Secret::new),
            root_key: get("PALISADE_ROOT_KEY").map(Secret::new),
            log_format: match get("PALISADE_LOG_FORMAT").as_deref() {
                None | Some("pretty") => LogFormat::Pretty,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(ConfigError {
                        variable: "PALISADE_LOG_FORMAT",
                        message: format!("'{other}' is not one of pretty, json"),
                    })
                }
            },
            snapshots: parse_snapshots(get("PALISADE_SNAPSHOTS").as_deref())?,
            feed_poll: Duration::from_millis(parse(&get, "PALISADE_FEED_POLL_MS", "1000")?),
            projection_batch: parse(&get, "PALISADE_PROJECTION_BATCH", "500")?,
            projection_groups: parse(&get, "PALISADE_PROJECTION_GROUPS", "2")?,
            projection_lock_retry: Duration::from_millis(parse(
                &get,
                "PALISADE_PROJECTION_LOCK_RETRY_MS",
                "2000",
            )?),
            db_max_connections: parse(&get, "PALISADE_DB_MAX_CONNECTIONS", "16")?,
            db_acquire_timeout: Duration::from_millis(parse(
                &get,
                "PALISADE_DB_ACQUIRE_TIMEOUT_MS",
                "2000",
            )?),
            scheduler_interval: Duration::from_millis(parse(
                &get,
                "PALISADE_SCHEDULER_INTERVAL_MS",
                "5000",
            )?),
            strong_read_timeout: Duration::from_millis(parse(
                &get,
                "PALISADE_STRONG_READ_TIMEOUT_MS",
                "5000",
            )?),
            sse_heartbeat: Duration::from_millis(
                parse::<u64>(&get, "PALISADE_SSE_HEARTBEAT_MS", "15000")?.max(100),
            ),
            slow_statement: Duration::from_millis(parse(
                &get,
                "PALISADE_SLOW_STATEMENT_MS",
                "1000",
            )?),
            ingest_concurrency: parse::<usize>(&get, "PALISADE_INGEST_CONCURRENCY", "2")?
                .clamp(1, 64),
            webhooks_allow_private: parse(&get, "PALISADE_WEBHOOKS_ALLOW_PRIVATE", "false")?,
            webhooks_send: parse(&get, "PALISADE_WEBHOOKS_SEND", "true")?,
            webhooks_ca_file: get("PALISADE_WEBHOOKS_CA_FILE")
                .filter(|path| !path.trim().is_empty())
                .map(PathBuf::from),
        })
    }

    /// The embedded store's file.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join("palisade.db")
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: &str,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    let value = get(variable).unwrap_or_else(|| default.to_string());
    value.trim().parse().map_err(|e: T::Err| ConfigError {
        variable,
        message: format!("'{value}': {e}"),
    })
}

fn parse_snapshots(value: Option<&str>) -> Result<HashMap<String, usize>, ConfigError> {
    let error = |message: String| ConfigError {
        variable: "PALISADE_SNAPSHOTS",
        message,
    };
    let mut sizes = HashMap::new();
    for item in value
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.trim().is_empty())
    {
        let (aggregate, every) = item
            .split_once('=')
            .ok_or_else(|| error(format!("'{item}' is not AggregateType=N")))?;
        let every: usize = every
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| error(format!("'{item}': N must be a positive whole number")))?;
        sizes.insert(aggregate.trim().to_string(), every);
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_select_embedded_sqlite_on_localhost() {
        let config = config(&[]).expect("defaults are valid");
        assert!(config.database_url.is_none());
        assert_eq!(config.sqlite_path(), PathBuf::from("./data/palisade.db"));
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn snapshot_sizes_are_per_aggregate() {
        let config = config(&[("PALISADE_SNAPSHOTS", "Tenant=100, Finding=20")]).expect("valid");
        assert_eq!(config.snapshots.get("Tenant"), Some(&100));
        assert_eq!(config.snapshots.get("Finding"), Some(&20));
        assert!(config_err("PALISADE_SNAPSHOTS", "Tenant=0").contains("positive"));
    }

    #[test]
    fn a_non_postgres_database_url_is_refused() {
        assert!(config_err("PALISADE_DATABASE_URL", "mysql://x").contains("postgres://"));
        assert!(config_err("PALISADE_BIND", "nowhere").contains("PALISADE_BIND"));
    }

    #[test]
    fn secrets_never_print_themselves() {
        let config = config(&[
            ("PALISADE_ADMIN_TOKEN", "pal_admin_hunter2"),
            ("PALISADE_ROOT_KEY", &"ab".repeat(32)),
            ("PALISADE_DATABASE_URL", "postgres://u:pw-s3cret@db/x"),
        ])
        .expect("valid");
        let printed = format!("{config:?}");
        for secret in ["hunter2", &"ab".repeat(32), "pw-s3cret"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("[redacted]"));
        assert_eq!(
            config.admin_token.as_ref().map(Secret::expose),
            Some("pal_admin_hunter2")
        );
    }

    fn config_err(name: &str, value: &str) -> String {
        config(&[(name, value)]).expect_err("invalid").to_string()
    }
}
