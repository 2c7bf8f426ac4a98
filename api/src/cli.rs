//! The `palisade` command line.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use palisade_infra::Config;

use crate::app::tenants::{self, CreateTenantRequest};
use crate::app::{App, Origin};
use crate::server::serve;
use crate::views::tenants::CreatedTenant;

#[derive(Debug, Parser)]
#[command(name = "palisade", version, about = "Event-sourced security backend")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (embedded SQLite unless PALISADE_DATABASE_URL is set).
    Serve {
        /// Address to listen on [env: PALISADE_BIND, default 127.0.0.1:8080].
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Apply pending schema migrations and exit.
    Migrate,
    /// Inspect or rebuild read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Manage tenants offline.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Show each projection's checkpoint and lag (JSON).
    Status,
    /// Clear a projection and rebuild it from the start of the feed.
    Rebuild { name: String },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant with its owner's first API key; print both as JSON.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "free")]
        plan: String,
        /// The first API key's principal [default: owner].
        #[arg(long)]
        owner_principal: Option<String>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_env().context("invalid configuration")?;
    crate::telemetry::init(config.log_format);
    for name in Config::unknown_variables() {
        tracing::warn!(variable = %name, "unknown PALISADE_ variable ignored");
    }
    match cli.command {
        Command::Serve { bind } => {
            let bind = bind.unwrap_or(config.bind);
            serve(config, bind).await
        }
        Command::Migrate => {
            let (app, _) = App::open(&config).await?;
            println!("migrations applied ({} store)", app.store.kind().as_str());
            Ok(())
        }
        Command::Projections { command } => projections(config, command).await,
        Command::Tenant {
            command:
                TenantCommand::Create {
                    name,
                    plan,
                    owner_principal,
                },
        } => {
            let (app, _) = App::open(&config).await?;
            let request = CreateTenantRequest {
                name,
                plan: Some(plan),
                owner_principal,
            };
            let created = tenants::create(&app, &Origin::default(), request, "cli").await?;
            println!("{}", serde_json::to_string(&CreatedTenant::from(created))?);
            Ok(())
        }
    }
}

async fn projections(config: Config, command: ProjectionsCommand) -> anyhow::Result<()> {
    let (app, _) = App::open(&config).await?;
    let runner = app.runner;
    match command {
        ProjectionsCommand::Status => {
            let statuses = runner.status().await?;
            println!("{}", serde_json::to_string_pretty(&statuses)?);
        }
        ProjectionsCommand::Rebuild { name } => {
            runner.reset(&name).await?;
            match runner.catch_up(&name).await {
                Ok(done) => {
                    let seconds = done.elapsed.as_secs_f64().max(1e-9);
                    println!(
                        "rebuilt {name}: {} events in {:.3} s ({:.0} events/s)",
                        done.events,
                        seconds,
                        done.events as f64 / seconds
                    );
                }
                Err(palisade_infra::projection::RunnerError::LockedElsewhere(_)) => {
                    println!(
                        "reset {name}; the server that runs it is rebuilding it now \
                         (watch `palisade projections status`)"
                    );
                }
                Err(other) => return Err(other.into()),
            }
        }
    }
    Ok(())
}
