//! `videovector`: serve the API, migrate, rebuild the search index, mint tokens, manage
//! operators, verify the audit log.

use std::{path::PathBuf, sync::Arc};

use clap::{Parser, Subcommand};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use videovector_api_spec::{
    dto::audit::{AuditAction, AuditActorType, AuditTargetType},
    Scope,
};
use videovector_server::{
    app::Storage,
    audit::{changes, verify, Actor, AuditLog, Entry},
    config::{Config, Overrides},
    db::{
        self,
        columns::Role,
        entities::{operator, organization},
    },
    search::{Indexer, SearchEngine},
    secrets_at_rest::resealing,
    services::auth,
};

#[derive(Parser)]
#[command(name = "videovector", version, about = "VideoVector API v2 server")]
struct Cli {
    /// Configuration file (default: ./videovector.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// Data directory (default ./videovector-data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL (default: SQLite file in the data directory).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Rebuild the search indexes from the database (stop the server first).
    Reindex,
    /// Rewrite every stored secret under the current secrets key (the first one), after a
    /// new key was added; older keys can then be removed.
    ResealSecrets,
    /// Mint a JWT for an operator with the built-in issuer.
    Token {
        #[arg(long)]
        email: String,
        /// Narrow the token to these scopes (comma-separated).
        #[arg(long, value_delimiter = ',')]
        scopes: Option<Vec<String>>,
    },
    /// Manage operator accounts.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every organisation's audit chain (or one's) end to end; exits with status 1
    /// naming the first broken link of each broken chain.
    Verify {
        /// Only this organisation's chain.
        #[arg(long)]
        organization: Option<String>,
    },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator (password from --password or VIDEOVECTOR_OPERATOR_PASSWORD).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, env = "VIDEOVECTOR_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
        /// admin, writer, reader or searcher.
        #[arg(long, default_value = "admin", value_parser = role_named)]
        role: Role,
        /// Mark the operator's email as verified.
        #[arg(long)]
        verified: bool,
        /// Organisation id (default: the first organisation).
        #[arg(long)]
        organization: Option<String>,
    },
}

fn main() -> anyhow::Result<()> {
    videovector_server::memory::limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(
        cli.config.as_deref(),
        Overrides {
            listen: cli.listen,
            data_dir: cli.data_dir,
            database_url: cli.database_url,
        },
    )?;
    let _flush_logs = videovector_server::logging::init(&config);
    let _ = rustls::crypto::ring::default_provider().install_default();

    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            db::open(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Reindex => {
            let storage = Storage::open(&config).await?;
            let engine = Arc::new(
                SearchEngine::new(config.search_dir())?
                    .approximate_from(config.approximate_search_from),
            );
            Indexer::new(storage.db, storage.segments, engine)
                .rebuild_all()
                .await?;
            println!("search indexes rebuilt");
            Ok(())
        }
        Command::ResealSecrets => {
            let db = db::open(&config).await?;
            let keyring = videovector_server::app::load_keyring(&config)?;
            let report =
                resealing::reseal_all(&db, &keyring, resealing::Reseal::NotCurrent).await?;
            println!(
                "{} secrets resealed under key {}",
                report.resealed,
                keyring.current_id()
            );
            anyhow::ensure!(
                report.unreadable == 0,
                "{} stored secrets open under none of the configured keys; they were left as they are",
                report.unreadable
            );
            Ok(())
        }
        Command::Token { email, scopes } => token(config, email, scopes).await,
        Command::Operator {
            command:
                OperatorCommand::Create {
                    email,
                    password,
                    role,
                    verified,
                    organization,
                },
        } => {
            let db = db::open(&config).await?;
            let org_id = match organization {
                Some(id) => id,
                None => match organization::Entity::find()
                    .order_by_asc(organization::Column::CreatedAt)
                    .one(&db)
                    .await?
                {
                    Some(org) => org.id,
                    None => {
                        auth::create_organization(&db, "Default organization")
                            .await?
                            .id
                    }
                },
            };
            let op = auth::create_operator(&db, &org_id, &email, &password, role, verified).await?;
            let mut entry = cli_entry(
                &op.org_id,
                AuditAction::OperatorCreate,
                "videovector operator create",
                &op.id,
            );
            entry.changes = changes::diff(
                None,
                Some(&serde_json::json!({
                    "email": op.email,
                    "role": role.scope().as_str(),
                    "verified": op.verified,
                })),
            );
            audit_log(&config)?.record(&db, entry).await;
            println!("created operator {} ({}) in {}", op.email, op.id, op.org_id);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { organization },
        } => {
            let db = db::open(&config).await?;
            let log = audit_log(&config)?;
            let verdicts = match organization {
                Some(org_id) => vec![verify::verify_org(&db, log.key(), &org_id).await?],
                None => verify::verify_all(&db, log.key()).await?,
            };
            for verdict in &verdicts {
                println!("{verdict}");
            }
            let broken = verdicts.iter().filter(|v| v.broken.is_some()).count();
            if broken > 0 {
                eprintln!("{broken} audit chain(s) broken");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

/// The audit log, keyed as the server keys it.
fn audit_log(config: &Config) -> anyhow::Result<AuditLog> {
    let (pepper, _) = videovector_server::app::load_secrets(config)?;
    Ok(AuditLog::new(&pepper, &config.jwt.issuer))
}

/// An audit entry for a command run on the server's host.
fn cli_entry(org_id: &str, action: AuditAction, command: &str, operator_id: &str) -> Entry {
    Entry::new(
        org_id,
        action,
        Actor::new(AuditActorType::Cli, command),
        AuditTargetType::Operator,
        operator_id,
    )
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let mut server = videovector_server::start(config).await?;
    let url = server.url();
    tracing::info!(
        %url,
        "listening: the API at {url}/api/v2, the docs site at {url}/, Swagger UI at {url}/docs, \
         MCP at {url}/mcp"
    );
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tokio::select! {
        result = server.wait() => result?,
        _ = stop => {
            tracing::info!("shutting down");
            server.stop().await?;
        }
    }
    Ok(())
}

/// A role as the command line names it.
fn role_named(name: &str) -> Result<Role, String> {
    Role::parse(name).ok_or_else(|| "the role must be admin, writer, reader or searcher".into())
}

async fn token(config: Config, email: String, scopes: Option<Vec<String>>) -> anyhow::Result<()> {
    let db = db::open(&config).await?;
    let op = operator::Entity::find()
        .filter(operator::Column::Email.eq(email.trim().to_lowercase()))
        .one(&db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no operator with email {email}"))?;
    let scopes = scopes
        .map(|list| {
            list.iter()
                .map(|s| Scope::parse(s.trim()).ok_or_else(|| anyhow::anyhow!("unknown scope {s}")))
                .collect::<anyhow::Result<Vec<_>>>()
        })
        .transpose()?;
    let (_, signing) = videovector_server::app::load_secrets(&config)?;
    let issuer = Arc::new(videovector_server::auth::jwt::TokenIssuer::new(
        &config.jwt,
        &signing,
    ));
    let audit = audit_log(&config)?;
    let auth = auth::Auth::new(
        db.clone(),
        issuer,
        videovector_server::auth::rate_limit::LoginLimiter::new(
            db.clone(),
            std::time::Duration::from_secs(1),
        ),
        auth::LoginLimits {
            per_pair: 1,
            per_client: 1,
        },
        audit.clone(),
    );
    let token = auth
        .mint_for(&op, scopes)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut entry = cli_entry(
        &op.org_id,
        AuditAction::TokenMint,
        "videovector token",
        &op.id,
    );
    let scopes = serde_json::json!(token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    entry.changes = changes::diff(None, Some(&serde_json::json!({ "scopes": scopes })));
    audit.record(&db, entry).await;
    println!("{}", token.access_token);
    Ok(())
}
