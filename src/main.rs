//! The `waops` binary: parse the CLI, load settings, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use waops::adapters::console;
use waops::core::{new_request_id, ChannelRef, Clock, Invocation, Platform, Principal};
use waops::settings::{self, LoadOptions, Settings};

/// Run WhatsApp group administration from team chat.
#[derive(Parser)]
#[command(name = "waops", version, about)]
struct Cli {
    /// A config file layered over config/default.toml (also WAOPS_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve HTTP: health, readiness, metrics (and chat routes when configured).
    Serve,
    /// Run one command through the full core and print the reply.
    /// Exit codes: 0 ok, 1 user error (or a preview needing --yes), 2 internal or config error.
    Exec {
        /// Act as this principal (repeat to add usergroups/roles). Default: console.
        #[arg(long = "as", value_name = "PRINCIPAL")]
        principals: Vec<String>,
        /// The channel the command runs in (`ID` = console:ID, or PLATFORM:ID).
        #[arg(long, value_name = "ID", default_value = "local")]
        channel: String,
        /// The command text, e.g. "add sales +49 151 1234 5678 --dry-run".
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
    },
    /// Load and validate the configuration; print what was loaded.
    CheckConfig,
    /// Run the store migrations and exit.
    Migrate,
    /// Ask the local server's /healthz (for container HEALTHCHECKs); exit 0 when healthy.
    Healthcheck,
    /// Discord set-up.
    Discord {
        #[command(subcommand)]
        command: DiscordCmd,
    },
}

#[derive(Subcommand)]
enum DiscordCmd {
    /// Register /wa with every subcommand and option (a bulk overwrite: safe to repeat).
    RegisterCommands {
        /// Register in this guild only (appears at once); default: globally.
        #[arg(long, value_name = "ID")]
        guild: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = LoadOptions {
        config_file: cli.config.clone(),
        ..LoadOptions::default()
    };
    let settings = match Settings::load(&options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("waops: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Cmd::CheckConfig => {
            println!("{}", settings::describe(&settings, cli.config.as_deref()));
            return ExitCode::SUCCESS;
        }
        Cmd::Healthcheck => return healthcheck(&settings.server.bind),
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("waops: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(run(cli.command, settings));
    ExitCode::from(code)
}

async fn run(command: Cmd, settings: Settings) -> u8 {
    match command {
        Cmd::Serve => {
            waops::telemetry::init_logs(settings.log.format, &settings.log.level);
            report(serve(settings).await)
        }
        Cmd::Exec {
            principals,
            channel,
            text,
        } => {
            // Keep the terminal for the reply: only warnings and errors go to stderr.
            waops::telemetry::init_logs(settings.log.format, "warn");
            match exec(settings, principals, &channel, text.join(" ")).await {
                Ok(code) => code,
                Err(e) => report(Err(e)),
            }
        }
        Cmd::Migrate => {
            waops::telemetry::init_logs(settings.log.format, &settings.log.level);
            let result = async {
                let store = waops::store::Store::connect(settings.store.url.expose()).await?;
                let n = store.migrate().await?;
                store.close().await;
                println!("store migrated ({n} migrations known)");
                Ok(())
            }
            .await;
            report(result)
        }
        Cmd::Discord {
            command: DiscordCmd::RegisterCommands { guild },
        } => {
            waops::telemetry::init_logs(settings.log.format, "warn");
            report(register_commands(&settings, guild.as_deref()).await)
        }
        Cmd::CheckConfig | Cmd::Healthcheck => unreachable!("handled before the runtime starts"),
    }
}

async fn register_commands(settings: &Settings, guild: Option<&str>) -> anyhow::Result<()> {
    let discord = &settings.discord;
    anyhow::ensure!(
        !discord.application_id.trim().is_empty() && discord.bot_token.is_set(),
        "set discord.application_id and discord.bot_token (WAOPS__DISCORD__APPLICATION_ID, WAOPS__DISCORD__BOT_TOKEN)"
    );
    let client = waops::adapters::discord::outbound::DiscordClient::new(discord)?;
    let count = client
        .register_commands(guild, waops::adapters::discord::register::commands())
        .await?;
    match guild {
        Some(g) => println!("registered /wa ({count} command) in guild {g}"),
        None => {
            println!("registered /wa ({count} command) globally; Discord may take up to an hour to show it everywhere")
        }
    }
    Ok(())
}

fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("waops: {e:#}");
            2
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let bind = settings.server.bind.clone();
    // libphonenumber's metadata loads in about 60 ms of CPU: now, beside
    // start-up, rather than inside the first add.
    tokio::task::spawn_blocking(waops::phone::warm_up);
    let ctx = waops::app::build_context(settings, Clock::System).await?;
    let listener = waops::http::listen(&bind).map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    // Handlers first: a SIGTERM right after "serving" must stop gracefully too.
    let shutdown = waops::app::shutdown_signal();
    tracing::info!(address = %listener.local_addr()?, accounts = %ctx.settings.describe_accounts(), "waops serving");
    waops::app::serve(ctx, listener, shutdown).await
}

async fn exec(settings: Settings, principals: Vec<String>, channel: &str, text: String) -> anyhow::Result<u8> {
    let principals = if principals.is_empty() {
        vec![Principal::console()]
    } else {
        let parsed: Result<Vec<_>, _> = principals.iter().map(|p| Principal::parse(p)).collect();
        match parsed {
            Ok(p) => p,
            Err(reason) => {
                eprintln!("waops: --as: {reason}");
                return Ok(2);
            }
        }
    };
    let ctx = waops::app::build_context(settings, Clock::System).await?;
    let invocation = Invocation {
        platform: Platform::Console,
        principals,
        channel: ChannelRef::from_text(channel),
        text,
        request_id: new_request_id(),
        applied: false,
        approved_by: None,
    };
    let bar = console::ProgressBar::on_terminal();
    let progress = bar.as_ref().map(|b| b as &dyn waops::core::Progress);
    let reply = waops::commands::dispatch_with_progress(&ctx, &invocation, progress).await;
    if let Some(bar) = &bar {
        bar.finish();
    }
    ctx.close().await;
    let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("{}", console::render(&reply, color));
    Ok(console::exit_code(&reply) as u8)
}

/// A minimal HTTP/1.1 GET of /healthz on the configured port: no HTTP client,
/// no curl in the image.
fn healthcheck(bind: &str) -> ExitCode {
    use std::io::{Read, Write};
    use std::time::Duration;
    let port = bind
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(8080);
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let result = (|| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        Ok(response)
    })();
    match result {
        Ok(response) if response.starts_with("HTTP/1.1 200") => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("waops: unhealthy: {}", response.lines().next().unwrap_or(""));
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("waops: unhealthy: {address}: {e}");
            ExitCode::from(1)
        }
    }
}
