//! `palisade serve`: open and migrate the store, start the projection
//! runner, serve HTTP, and on SIGINT/SIGTERM drain requests, then stop the
//! runner at a checkpoint.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use palisade_infra::{Config, Scheduler, SystemClock};
use tokio::sync::watch;

use crate::admin_token::AdminToken;
use crate::app::App;
use crate::state::AppState;

/// The whole HTTP surface: REST and GraphQL, behind the layers every
/// request passes (request id, the database circuit, body and path bounds).
pub fn router(state: AppState, schema: crate::graphql::PalisadeSchema) -> axum::Router {
    let routes = crate::rest::routes(&state)
        .merge(crate::graphql::routes(&state))
        .layer(axum::Extension(schema));
    crate::rest::with_layers(routes, state)
}

pub async fn serve(config: Config, bind: SocketAddr) -> anyhow::Result<()> {
    let (app, root_key_file) = App::open(&config).await?;
    if let Some(path) = root_key_file {
        tracing::info!(path = %path.display(), "root key is in this file; back it up");
    }
    let (admin_token, token_file) = AdminToken::load(
        config
            .admin_token
            .as_ref()
            .map(palisade_infra::Secret::expose),
        &config.data_dir,
    )?;
    if let Some(path) = token_file {
        tracing::info!(path = %path.display(), "admin token is in this file");
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut workers = app.runner.spawn(shutdown_rx.clone());
    let scheduler = Scheduler::new(
        app.store.clone(),
        app.keyring.sealer().clone(),
        Arc::new(SystemClock),
        config.scheduler_interval,
    );
    workers.push(scheduler.spawn(shutdown_rx.clone()));
    let ingestion = palisade_infra::ingest::runner::IngestRunner::new(
        app.store.clone(),
        config.ingest_concurrency,
        std::env::temp_dir(),
        Arc::new(SystemClock),
    )
    .woken_by(app.ingest_wake.clone());
    workers.push(ingestion.spawn(shutdown_rx.clone()));
    if config.webhooks_allow_private {
        tracing::warn!(
            "PALISADE_WEBHOOKS_ALLOW_PRIVATE=true: webhooks may be sent to loopback, private and link-local addresses"
        );
    }
    if config.webhooks_send {
        let mut sender_config =
            palisade_infra::webhooks::SenderConfig::new(config.webhooks_allow_private);
        if let Some(path) = &config.webhooks_ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("PALISADE_WEBHOOKS_CA_FILE {}: {e}", path.display())
            })?;
            palisade_infra::webhooks::guard::roots_from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("PALISADE_WEBHOOKS_CA_FILE {} {e}", path.display()))?;
            tracing::info!(path = %path.display(), "webhooks also trust the certificates of PALISADE_WEBHOOKS_CA_FILE");
            sender_config = sender_config.trusting(pem);
        }
        let senders = palisade_infra::webhooks::Senders::new(
            app.store.clone(),
            app.webhook_secrets.clone(),
            Arc::new(SystemClock),
            sender_config,
            app.webhook_counts.clone(),
        )?;
        let dispatched = app
            .runner
            .applied_here(palisade_infra::webhooks::WebhookDispatcher::NAME);
        workers.push(senders.spawn(shutdown_rx.clone(), dispatched));
    }
    workers.push(app.store.watch_availability(shutdown_rx.clone()));
    workers.push(
        app.usage
            .clone()
            .flush_every(app.store.clone(), shutdown_rx.clone()),
    );
    workers.push(
        app.key_usage
            .clone()
            .flush_every(app.commands.clone(), shutdown_rx.clone()),
    );
    workers.push(palisade_infra::readmodel::follow(
        app.keyring.clone(),
        app.store.clone(),
        app.runner.clone(),
        shutdown_rx.clone(),
    ));
    workers.push(palisade_infra::readmodel::follow(
        app.keys.clone(),
        app.store.clone(),
        app.runner.clone(),
        shutdown_rx.clone(),
    ));
    workers.push(tokio::spawn(prune_rate_limit_windows(
        app.clone(),
        shutdown_rx,
    )));
    let store = app.store.clone();
    let (draining_tx, draining) = watch::channel(false);
    let schema = crate::graphql::schema(Some((app.clone(), draining.clone())));
    let state = AppState {
        app,
        admin_token: Arc::new(admin_token),
        draining,
    };
    // Handlers are registered before the server says it is listening, so a
    // signal sent the moment it is ready already drains instead of killing.
    let signal = shutdown_signal()?;
    let shutdown = async move {
        signal.await;
        let _ = draining_tx.send(true);
    };
    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(
        store = store.kind().as_str(),
        "listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, router(state, schema))
        .with_graceful_shutdown(shutdown)
        .await?;
    tracing::info!("requests drained; stopping projections at a checkpoint");
    let _ = shutdown_tx.send(true);
    for worker in workers {
        if tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .is_err()
        {
            tracing::warn!("a projection did not stop within 30 s");
        }
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes ended rate-limit windows every ten minutes.
async fn prune_rate_limit_windows(app: App, mut shutdown: watch::Receiver<bool>) {
    loop {
        match palisade_infra::usage::prune_counters(app.store.read_pool(), chrono::Utc::now()).await
        {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "pruned rate-limit windows"),
            Err(error) => tracing::warn!(%error, "cannot prune rate-limit windows"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Registers SIGINT and SIGTERM handlers now; the future ends at the first signal.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("shutdown requested");
    })
}
