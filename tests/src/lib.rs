//! Test support: fresh stores on both backends, and the real `palisade`
//! binary started as a child process.
//!
//! PostgreSQL tests read `PALISADE_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and run in a fresh database
//! each. When PostgreSQL is unreachable they skip loudly, unless
//! `PALISADE_REQUIRE_POSTGRES=1`, when they fail naming the URL they tried.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used)]

pub mod findings;
pub mod receiver;
pub mod reports;
mod server;
mod sse;
mod store;

pub use server::{binary, Auth, Server, ServerOptions, ADMIN_TOKEN};
pub use sse::{SseClient, SseEvent};
pub use store::{postgres_admin_url, read_feed_all, read_feed_exactly, Backend, TestStore};

/// Runs each named `async fn(&Backend)` as two tests, `sqlite::name` and
/// `postgres::name`, each on a fresh store that is removed afterwards.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let backend = palisade_tests::Backend::sqlite();
                    super::$name(&backend).await;
                    backend.cleanup().await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(backend) = palisade_tests::Backend::postgres().await {
                        super::$name(&backend).await;
                        backend.cleanup().await;
                    }
                }
            )+
        }
    };
}

/// Runs each named `async fn(Backend)` as two multi-threaded tests,
/// `sqlite::name` and `postgres::name`, for tests that open a
/// [`TestStore`] in process (the function cleans up with `finish`).
#[macro_export]
macro_rules! in_process_on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(palisade_tests::Backend::sqlite()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(backend) = palisade_tests::Backend::postgres().await {
                        super::$name(backend).await;
                    }
                }
            )+
        }
    };
}
