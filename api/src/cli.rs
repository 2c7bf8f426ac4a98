//! The `palisade` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use palisade_infra::Config;

use crate::app::tenants::{self, CreateTenantRequest};
use crate::app::{App, Origin};
use crate::import::ImportArgs;
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
    /// Upload scanner reports to a running server (SARIF, Nuclei, ZAP, Burp).
    Import(ImportCommand),
}

/// `palisade import FILE...`: a client of `POST /v1/ingestion/upload`.
#[derive(Debug, clap::Args)]
struct ImportCommand {
    /// The reports, each at most 50 MiB.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The server's base URL.
    #[arg(long, env = "PALISADE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key with the scope findings:write (and findings:read for --wait).
    #[arg(long, env = "PALISADE_API_KEY", hide_env_values = true)]
    key: String,
    /// sarif, nuclei, zap or burp [default: detected from the content].
    #[arg(long)]
    format: Option<String>,
    /// The product the findings are filed under [default: the report's tool].
    #[arg(long)]
    product: Option<String>,
    /// What --close-old compares within [default: the product].
    #[arg(long)]
    scope: Option<String>,
    /// Remediate the product's and scope's open findings that the report no longer holds.
    #[arg(long)]
    close_old: bool,
    /// Skip findings below it: critical, high, medium, low or info.
    #[arg(long)]
    minimum_severity: Option<String>,
    /// A tag added to every finding (repeat for more).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Follow each job to its end and print its counts (exit 1 when one fails).
    #[arg(long)]
    wait: bool,
    /// Print each job's document (JSON, one per line) instead of progress.
    #[arg(long)]
    json: bool,
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
    if let Command::Import(import) = cli.command {
        // A client: none of the server's configuration applies.
        return crate::import::run(ImportArgs {
            files: import.files,
            url: import.url,
            key: import.key,
            format: import.format,
            product: import.product,
            scope: import.scope,
            close_old: import.close_old,
            minimum_severity: import.minimum_severity,
            tags: import.tags,
            wait: import.wait,
            json: import.json,
        })
        .await;
    }
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
        Command::Import(_) => unreachable!("handled above"),
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
