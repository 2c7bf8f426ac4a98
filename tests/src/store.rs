use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palisade_infra::{Config, Store};
use palisade_projections::{FeedEvent, FeedPosition};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

/// The server the PostgreSQL tests use to create their own databases.
pub fn postgres_admin_url() -> String {
    std::env::var("PALISADE_TEST_DATABASE_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn postgres_required() -> bool {
    std::env::var("PALISADE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

/// Where a test's data lives: a fresh data directory (the SQLite file and
/// the admin token), and for PostgreSQL tests a fresh database.
pub struct Backend {
    pub dir: PathBuf,
    postgres: Option<PostgresDatabase>,
}

struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn fresh_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("palisade-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Backend {
    pub fn sqlite() -> Self {
        Backend {
            dir: fresh_dir(),
            postgres: None,
        }
    }

    /// A fresh, empty database; `None` (after a loud message) when PostgreSQL
    /// is unreachable and not required.
    pub async fn postgres() -> Option<Self> {
        let admin_url = postgres_admin_url();
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(connection) => connection,
            Err(error) if postgres_required() => panic!(
                "PALISADE_REQUIRE_POSTGRES=1 but PostgreSQL at {admin_url} is unreachable: {error}"
            ),
            Err(error) => {
                eprintln!(
                    "SKIPPED: PostgreSQL at {admin_url} is unreachable ({error}); \
                     set PALISADE_TEST_DATABASE_URL or start PostgreSQL to run this test"
                );
                return None;
            }
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        drop_stale_databases(&mut admin, now).await;
        let database = format!(
            "palisade_t_{now}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        sqlx::query(&format!("CREATE DATABASE {database}"))
            .execute(&mut admin)
            .await
            .unwrap();
        let url = with_database(&admin_url, &database);
        Some(Backend {
            dir: fresh_dir(),
            postgres: Some(PostgresDatabase {
                admin_url,
                name: database,
                url,
            }),
        })
    }

    pub fn kind(&self) -> &'static str {
        match self.postgres {
            None => "sqlite",
            Some(_) => "postgres",
        }
    }

    /// The database URL, for PostgreSQL backends.
    pub fn database_url(&self) -> Option<&str> {
        self.postgres.as_ref().map(|db| db.url.as_str())
    }

    /// The database's name, for PostgreSQL backends.
    pub fn database_name(&self) -> Option<&str> {
        self.postgres.as_ref().map(|db| db.name.as_str())
    }

    /// A server configuration on this backend, with test-friendly timings.
    pub fn config(&self) -> Config {
        let mut config = Config::from_lookup(|_| None).unwrap();
        config.data_dir = self.dir.clone();
        config.database_url = self.database_url().map(palisade_infra::Secret::new);
        config.feed_poll = std::time::Duration::from_millis(200);
        config.projection_lock_retry = std::time::Duration::from_millis(500);
        config
    }

    /// Environment variables that give a server process this backend.
    pub fn env(&self) -> Vec<(String, String)> {
        let config = self.config();
        let mut env = vec![(
            "PALISADE_DATA_DIR".to_string(),
            config.data_dir.display().to_string(),
        )];
        if let Some(url) = config.database_url {
            env.push((
                "PALISADE_DATABASE_URL".to_string(),
                url.expose().to_string(),
            ));
        }
        env
    }

    /// Runs `palisade <args>` on this backend, with nothing else in its
    /// environment; its standard output. Panics unless it succeeds.
    pub async fn run_cli(&self, args: &[&str]) -> Vec<u8> {
        let output = tokio::process::Command::new(crate::binary())
            .args(args)
            .env_clear()
            .envs(self.env())
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "palisade {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// Removes what the test created.
    pub async fn cleanup(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(db) = self.postgres {
            if let Ok(mut admin) = PgConnection::connect(&db.admin_url).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
                    .execute(&mut admin)
                    .await;
            }
        }
    }
}

fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let server = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Databases left by tests that panicked more than an hour ago.
async fn drop_stale_databases(admin: &mut PgConnection, now: u64) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'palisade\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await
            .unwrap_or_default();
    for name in names {
        let created: Option<u64> = name.split('_').nth(2).and_then(|s| s.parse().ok());
        if created.is_some_and(|created| created + 3600 < now) {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
        }
    }
}

/// An open, migrated store on a fresh backend.
pub struct TestStore {
    pub store: Store,
    pub config: Config,
    pub backend: Backend,
}

impl TestStore {
    pub async fn open(backend: Backend) -> Self {
        Self::open_with(backend, |_| {}).await
    }

    pub async fn open_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = backend.config();
        adjust(&mut config);
        let store = Store::open(&config).await.unwrap();
        store.migrate().await.unwrap();
        Self {
            store,
            config,
            backend,
        }
    }

    /// A plain PostgreSQL pool on the test database (PostgreSQL only).
    pub async fn raw_postgres(&self) -> sqlx::PgPool {
        let url = self
            .backend
            .database_url()
            .expect("a PostgreSQL test store");
        PgPoolOptions::new()
            .max_connections(12)
            .connect(url)
            .await
            .unwrap()
    }

    pub async fn finish(self) {
        self.store.close().await;
        self.backend.cleanup().await;
    }
}

/// The whole feed once it holds `expected` events. On PostgreSQL a committed
/// event becomes readable once every older transaction in the cluster has
/// ended, so a read right after a commit may briefly see fewer (parallel
/// tests in other databases count too).
pub async fn read_feed_exactly(store: &Store, expected: usize) -> Vec<FeedEvent> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = read_feed_all(store).await;
        if events.len() >= expected || Instant::now() > deadline {
            assert_eq!(
                events.len(),
                expected,
                "the feed holds exactly the committed events"
            );
            return events;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every event the feed returns right now.
pub async fn read_feed_all(store: &Store) -> Vec<FeedEvent> {
    let mut events = Vec::new();
    let mut position = FeedPosition::START;
    loop {
        let batch = store.read_feed(position, 1000).await.unwrap();
        let Some(last) = batch.last() else {
            return events;
        };
        position = last.position;
        events.extend(batch);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_database_name_replaces_the_one_in_the_url() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h/test?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
