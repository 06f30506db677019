//! Typed settings, loaded in layers with the `config` crate and validated once
//! at start-up. This is the only module that reads the process environment.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use std::time::Duration;

use serde::Deserialize;

use crate::core::permissions::{self, GroupScope};
use crate::core::values::parse_duration;
use crate::core::{CommandId, Principal};
use crate::group_ref::GroupId;
pub use waops_core::permissions::{PermissionSettings, RoleSettings};
pub use waops_core::provider::ProviderKind;

/// The built-in defaults: the same text as `config/default.toml`, so a binary
/// without its config folder (the container) behaves like a checkout.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Where a setting came from, for error messages.
const BUILT_IN: &str = "built-in defaults";
const DISK_DEFAULTS: &str = "config/default.toml";

/// A secret string (token, signing secret). `Debug` and `Display` never show it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when a non-empty value was configured.
    pub fn is_set(&self) -> bool {
        !self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() { "[redacted]" } else { "[unset]" })
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// All of waops' settings.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// HTTP server.
    pub server: ServerSettings,
    /// Logging.
    pub log: LogSettings,
    /// The store.
    pub store: StoreSettings,
    /// The WhatsApp provider.
    pub provider: ProviderSettings,
    /// Phone-number parsing.
    pub numbers: NumberSettings,
    /// Size limits.
    pub limits: LimitSettings,
    /// How results are shown.
    pub display: DisplaySettings,
    /// Group aliases.
    pub groups: GroupSettings,
    /// Digest scheduler.
    pub digests: DigestSettings,
    /// Slack app.
    pub slack: SlackSettings,
    /// Discord app.
    pub discord: DiscordSettings,
    /// Roles and bindings.
    pub permissions: PermissionSettings,
    /// More WhatsApp accounts (connected numbers): `[accounts.<name>]`, each
    /// with `[provider]`'s keys; unset keys take `[provider]`'s built-in defaults.
    #[serde(default)]
    pub accounts: BTreeMap<String, ProviderSettings>,
    /// Per-channel settings: `[channels."slack:C123"]`.
    #[serde(default)]
    pub channels: BTreeMap<String, ChannelSettings>,
    /// Whether a file or the environment set `[provider]`: once `[accounts.*]`
    /// exist, only then is it an account (`default`).
    #[serde(skip)]
    pub provider_set: bool,
}

/// `[channels."<platform>:<id>"]`
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ChannelSettings {
    /// The account this channel's commands use unless `--account` names one.
    pub account: Option<String>,
}

/// Every setting held as a `Secret` (never logged, never in `Debug`): what a
/// deployment must pass from its secret store, not from a config file.
/// `[accounts.<name>]` tables have the provider's three besides.
pub const SECRET_KEYS: [&str; 7] = [
    "store.url",
    "provider.token",
    "provider.access_token",
    "provider.webhook_secret",
    "slack.signing_secret",
    "slack.bot_token",
    "discord.bot_token",
];

/// The name of the account `[provider]` configures.
pub const DEFAULT_ACCOUNT: &str = "default";

impl Settings {
    /// The configured accounts by name, in order: `[provider]` as `default`
    /// (when there are no `[accounts.*]`, or it was set explicitly), then
    /// `[accounts.*]` by name.
    pub fn account_settings(&self) -> Vec<(&str, &ProviderSettings)> {
        let provider = (self.accounts.is_empty() || self.provider_set).then_some((DEFAULT_ACCOUNT, &self.provider));
        provider
            .into_iter()
            .chain(self.accounts.iter().map(|(name, p)| (name.as_str(), p)))
            .collect()
    }

    /// `de (periskope), us (wuts)`: each account with its provider kind.
    pub fn describe_accounts(&self) -> String {
        let described: Vec<String> = self
            .account_settings()
            .iter()
            .map(|(name, p)| format!("{name} ({})", p.kind.as_str()))
            .collect();
        described.join(", ")
    }

    /// The account a channel's commands use by default, if configured.
    pub fn channel_account(&self, channel: &str) -> Option<&str> {
        self.channels.get(channel).and_then(|c| c.account.as_deref())
    }
}

/// `[server]`
#[derive(Clone, Debug, Deserialize)]
pub struct ServerSettings {
    /// Listen address, e.g. `0.0.0.0:8080`.
    pub bind: String,
    /// Request bodies above this size get 413.
    pub max_body_bytes: usize,
    /// How long in-flight work may take after SIGTERM (`shutdown_grace_s`).
    #[serde(rename = "shutdown_grace_s", deserialize_with = "seconds")]
    pub shutdown_grace: Duration,
    /// Commands running off the request path at once; beyond it users get "busy, try again".
    pub max_in_flight: u32,
    /// Client connections served at once; more wait in the listen backlog.
    pub max_connections: u32,
    /// How long a client may take to send a request head (`header_timeout_s`).
    #[serde(rename = "header_timeout_s", deserialize_with = "seconds")]
    pub header_timeout: Duration,
    /// How long a client may take to send a request body before 408 (`body_timeout_s`).
    #[serde(rename = "body_timeout_s", deserialize_with = "seconds")]
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request (`idle_timeout_s`).
    #[serde(rename = "idle_timeout_s", deserialize_with = "seconds")]
    pub idle_timeout: Duration,
}

/// `[log]`
#[derive(Clone, Debug, Deserialize)]
pub struct LogSettings {
    /// Output format.
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive.
    pub level: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[store]`
#[derive(Clone, Debug, Deserialize)]
pub struct StoreSettings {
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://...`. May hold a password: never logged.
    pub url: Secret,
    /// How long rows are kept.
    pub retention: RetentionSettings,
}

/// `[store.retention]`: how long each table's rows are kept (`0` = forever).
#[derive(Clone, Debug, Deserialize)]
pub struct RetentionSettings {
    /// Audit rows, by when the command ran.
    #[serde(deserialize_with = "window")]
    pub audit: Duration,
    /// Membership events from webhooks, by when waops received them.
    #[serde(deserialize_with = "window")]
    pub journal: Duration,
    /// Previews' Apply/Cancel records, after they expire.
    #[serde(deserialize_with = "window")]
    pub confirmations: Duration,
}

/// `[provider]`
#[derive(Clone, Debug, Deserialize)]
pub struct ProviderSettings {
    /// Which provider.
    pub kind: ProviderKind,
    /// API base URL with version prefix; empty = the kind's default.
    pub base_url: String,
    /// API token (Periskope, WUTS).
    pub token: Secret,
    /// Periskope `x-phone`.
    pub phone: String,
    /// Wawp instance id.
    pub instance_id: String,
    /// Wawp access token.
    pub access_token: Secret,
    /// Per-request timeout in milliseconds.
    #[serde(rename = "timeout_ms", deserialize_with = "millis")]
    pub timeout: Duration,
    /// Retries for retryable failures.
    pub max_retries: u32,
    /// Client-side requests per second.
    pub rate_per_second: u32,
    /// Client-side burst.
    pub burst: u32,
    /// Most requests in flight to the provider at once; each holds one
    /// connection, so this bounds the connections a burst opens. More wait
    /// their turn.
    pub max_connections: u32,
    /// Numbers per add request.
    pub add_chunk_size: usize,
    /// Pause between add chunks (`add_pause_ms`).
    #[serde(rename = "add_pause_ms", deserialize_with = "millis")]
    pub add_pause: Duration,
    /// Webhook verification secret.
    pub webhook_secret: Secret,
    /// Periskope: try direct adds for everybody (`force_add_participants`).
    pub force_add: bool,
    /// How long the group list is reused for resolving names (refreshed on a
    /// miss; `group_cache_s`).
    #[serde(rename = "group_cache_s", deserialize_with = "seconds")]
    pub group_cache: Duration,
    /// The account's name (`default` for `[provider]`), for metrics and logs;
    /// set at load from the table's name, not a key.
    #[serde(skip)]
    pub account: String,
}

/// One provider account's credentials, by kind: what `[provider]` holds for
/// the configured `kind`, checked once at load. The file keeps one flat
/// `[provider]` table (a kind's keys beside the shared ones); the code reads
/// the credentials only through this.
#[derive(Clone, Debug)]
pub enum Account {
    /// The built-in sandbox: no credentials.
    Sandbox,
    /// Periskope: an API key and the connected phone (`x-phone`).
    Periskope {
        /// The API key.
        token: Secret,
        /// The connected number, digits only.
        phone: String,
    },
    /// WUTS: an API token.
    Wuts {
        /// The API token.
        token: Secret,
    },
    /// Wawp: an instance and its access token.
    Wawp {
        /// The instance id.
        instance_id: String,
        /// The access token.
        access_token: Secret,
    },
}

impl ProviderSettings {
    /// The credentials of `kind`, or the key that is missing and why.
    pub fn account(&self) -> Result<Account, (String, String)> {
        let missing = |key: &str| {
            Err((
                format!("provider.{key}"),
                format!("required when provider.kind = \"{}\"", self.kind.as_str()),
            ))
        };
        let text = |value: &str| Some(value.trim().to_string()).filter(|v| !v.is_empty());
        let secret = |value: &Secret| value.is_set().then(|| value.clone());
        Ok(match self.kind {
            ProviderKind::Sandbox => Account::Sandbox,
            ProviderKind::Periskope => Account::Periskope {
                token: match secret(&self.token) {
                    Some(token) => token,
                    None => return missing("token"),
                },
                phone: match text(&self.phone) {
                    Some(phone) => phone.trim_start_matches('+').to_string(),
                    None => return missing("phone"),
                },
            },
            ProviderKind::Wuts => Account::Wuts {
                token: match secret(&self.token) {
                    Some(token) => token,
                    None => return missing("token"),
                },
            },
            ProviderKind::Wawp => Account::Wawp {
                instance_id: match text(&self.instance_id) {
                    Some(id) => id,
                    None => return missing("instance_id"),
                },
                access_token: match secret(&self.access_token) {
                    Some(token) => token,
                    None => return missing("access_token"),
                },
            },
        })
    }
}

/// `[numbers]`
#[derive(Clone, Debug, Deserialize)]
pub struct NumberSettings {
    /// ISO 3166 alpha-2 region for numbers without a country code.
    pub default_region: String,
}

/// `[limits]`
#[derive(Clone, Debug, Deserialize)]
pub struct LimitSettings {
    /// Most numbers in one add.
    pub max_numbers_per_add: usize,
    /// Adds above this many numbers need confirmation.
    pub confirm_over: usize,
    /// An identical add by the same person within this long gets the first
    /// one's result instead of a second provider call (`0s` turns it off).
    #[serde(deserialize_with = "window")]
    pub dedupe_window: Duration,
    /// How long a two-person approval request may be approved.
    #[serde(deserialize_with = "period")]
    pub approval_ttl: Duration,
}

/// Whole seconds, as a duration.
fn seconds<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u64::deserialize(de).map(Duration::from_secs)
}

/// Milliseconds, as a duration.
fn millis<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u64::deserialize(de).map(Duration::from_millis)
}

/// A duration as people write it (`30s`, `5m`, `1d`).
fn period<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Like `period`, and zero (`0` or `0s`) means off.
fn window<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    match text.trim() {
        "0" | "0s" => Ok(Duration::ZERO),
        text => parse_duration(text).map_err(serde::de::Error::custom),
    }
}

/// `[display]`
#[derive(Clone, Debug, Deserialize)]
pub struct DisplaySettings {
    /// Mask numbers in history and digests.
    pub mask_numbers: bool,
    /// Where results go.
    pub results: ResultVisibility,
}

/// Where join/add/invite/history results are shown.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ResultVisibility {
    /// Everybody in the channel.
    Channel,
    /// Only the caller.
    Ephemeral,
}

/// `[groups]`
#[derive(Clone, Debug, Deserialize)]
pub struct GroupSettings {
    /// alias → group id.
    pub aliases: BTreeMap<String, String>,
}

/// `[digests]`
#[derive(Clone, Debug, Deserialize)]
pub struct DigestSettings {
    /// Scheduler period in seconds.
    #[serde(rename = "tick_s", deserialize_with = "seconds")]
    pub tick: Duration,
    /// Shortest `--every`, as a duration (`5m`).
    #[serde(deserialize_with = "period")]
    pub min_every: Duration,
    /// Post digests for empty windows.
    pub post_empty: bool,
    /// Seconds a replica holds a subscription while posting its digest; a
    /// crashed replica's subscriptions are taken over after this long.
    #[serde(rename = "lease_s", deserialize_with = "seconds")]
    pub lease: Duration,
    /// Subscriptions one replica works on at once in a tick.
    pub concurrency: u32,
}

/// `[slack]`
#[derive(Clone, Debug, Deserialize)]
pub struct SlackSettings {
    /// Request signing secret; routes are enabled when set.
    pub signing_secret: Secret,
    /// Bot token for the Web API.
    pub bot_token: Secret,
    /// Web API base URL.
    pub api_url: String,
    /// Results are posted only to `response_url`s that start with one of these.
    pub response_url_prefixes: Vec<String>,
    /// If not empty, only these workspaces are served.
    pub team_ids: Vec<String>,
}

impl SlackSettings {
    /// Whether requests from workspace `team` are served.
    pub fn team_allowed(&self, team: &str) -> bool {
        self.team_ids.is_empty() || self.team_ids.iter().any(|t| t == team)
    }

    /// Whether waops may post to `url`: under an allowed prefix, whole.
    pub fn response_url_allowed(&self, url: &str) -> bool {
        self.response_url_prefixes
            .iter()
            .any(|prefix| !prefix.is_empty() && url.starts_with(prefix.as_str()))
    }
}

/// `[discord]`
#[derive(Clone, Debug, Deserialize)]
pub struct DiscordSettings {
    /// Application public key (hex); routes are enabled when set.
    pub public_key: String,
    /// Application id.
    pub application_id: String,
    /// Bot token.
    pub bot_token: Secret,
    /// REST API base URL.
    pub api_url: String,
    /// `http` or `gateway`.
    pub mode: DiscordMode,
    /// Whether commands sent in direct messages to the bot are served.
    pub allow_dms: bool,
    /// If not empty, only these servers are served (and no direct messages).
    pub guild_ids: Vec<String>,
}

impl DiscordSettings {
    /// Whether interactions from server `guild` (`None`: a direct message) are
    /// served under `guild_ids`; `allow_dms` is checked on its own.
    pub fn guild_allowed(&self, guild: Option<&str>) -> bool {
        self.guild_ids.is_empty() || guild.is_some_and(|g| self.guild_ids.iter().any(|id| id == g))
    }
}

/// How Discord reaches waops.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DiscordMode {
    /// HTTP interactions endpoint.
    Http,
    /// A gateway connection.
    Gateway,
}

/// A configuration problem: which file, which key, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct SettingsError {
    /// The file (or "environment") the offending value came from.
    pub file: String,
    /// The dotted key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Where to load settings from.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--config`; falls back to `WAOPS_CONFIG`.
    pub config_file: Option<PathBuf>,
    /// Directory holding `config/default.toml`; `None` = the current directory.
    pub base_dir: Option<PathBuf>,
    /// Environment variables to read; `None` = the process environment.
    pub env: Option<HashMap<String, String>>,
}

struct Layer {
    name: String,
    config: Config,
}

impl Settings {
    /// Loads and validates settings from all layers.
    pub fn load(options: &LoadOptions) -> Result<Settings, SettingsError> {
        let env = options.env.clone().unwrap_or_else(|| std::env::vars().collect());
        let mut layers = vec![layer(BUILT_IN, File::from_str(DEFAULT_TOML, FileFormat::Toml))?];
        let base = options.base_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let disk_defaults = base.join(DISK_DEFAULTS);
        if disk_defaults.is_file() {
            layers.push(layer(DISK_DEFAULTS, File::from(disk_defaults.as_path()))?);
        }
        let explicit = options
            .config_file
            .clone()
            .or_else(|| env.get("WAOPS_CONFIG").filter(|v| !v.is_empty()).map(PathBuf::from));
        if let Some(path) = explicit {
            let name = path.display().to_string();
            if !path.is_file() {
                return Err(SettingsError {
                    file: name,
                    key: "-".into(),
                    reason: "file not found".into(),
                });
            }
            layers.push(layer(&name, File::from(path.as_path()).format(FileFormat::Toml))?);
        }
        let vars: config::Map<String, String> = env.into_iter().filter(|(k, _)| k.starts_with("WAOPS__")).collect();
        layers.push(layer(
            "environment",
            Environment::with_prefix("WAOPS")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        )?);

        let mut builder = Config::builder();
        for l in &layers {
            builder = builder.add_source(l.config.clone());
        }
        // Each `[accounts.<name>]` starts from `[provider]`'s built-in defaults
        // (not from the configured `[provider]`: another account's credentials
        // and phone must never leak into this one).
        let provider_defaults = layers[0]
            .config
            .get_table("provider")
            .map_err(|e| plain_error(BUILT_IN, e))?;
        let mut provider_set = false;
        for l in &layers[1..] {
            provider_set |= l.name != DISK_DEFAULTS && l.config.get_table("provider").is_ok_and(|t| !t.is_empty());
            for name in l.config.get_table("accounts").unwrap_or_default().into_keys() {
                for (key, value) in &provider_defaults {
                    builder = builder
                        .set_default(format!("accounts.{name}.{key}"), value.clone())
                        .map_err(|e| plain_error(&l.name, e))?;
                }
            }
        }
        let merged = builder.build().map_err(|e| plain_error("configuration", e))?;
        let mut settings = deserialize(merged, &layers)?;
        settings.provider_set = provider_set;
        settings.provider.account = DEFAULT_ACCOUNT.into();
        for (name, account) in &mut settings.accounts {
            account.account.clone_from(name);
        }
        settings.validate().map_err(|(key, reason)| {
            // A missing credential is the fault of whoever chose the provider kind.
            let blame = reason
                .strip_prefix("required when ")
                .and_then(|r| r.split(' ').next())
                .unwrap_or(key.as_str())
                .to_string();
            SettingsError {
                file: origin(&layers, &blame),
                key,
                reason,
            }
        })?;
        Ok(settings)
    }

    /// The settings with no files and no environment: what a fresh checkout runs.
    pub fn defaults() -> Settings {
        Settings::load(&LoadOptions {
            base_dir: Some(PathBuf::from("/nonexistent")),
            env: Some(HashMap::new()),
            ..LoadOptions::default()
        })
        .expect("built-in defaults are valid")
    }

    /// Checks what types alone cannot: returns the dotted key and the reason.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let err = |key: &str, reason: String| Err((key.to_string(), reason));
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return err(
                "server.bind",
                format!(
                    "`{}` is not an address (expected HOST:PORT, e.g. 0.0.0.0:8080)",
                    self.server.bind
                ),
            );
        }
        let counts = [
            ("server.max_body_bytes", self.server.max_body_bytes as u64),
            ("server.max_in_flight", u64::from(self.server.max_in_flight)),
            ("server.max_connections", u64::from(self.server.max_connections)),
            ("server.header_timeout_s", self.server.header_timeout.as_secs()),
            ("server.body_timeout_s", self.server.body_timeout.as_secs()),
            ("server.idle_timeout_s", self.server.idle_timeout.as_secs()),
            ("limits.max_numbers_per_add", self.limits.max_numbers_per_add as u64),
            ("digests.tick_s", self.digests.tick.as_secs()),
            ("digests.lease_s", self.digests.lease.as_secs()),
            ("digests.concurrency", u64::from(self.digests.concurrency)),
        ];
        if let Some((key, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return err(key, "must be more than 0".into());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return err(
                "log.level",
                format!(
                    "`{}` is not a log filter (expected e.g. info or waops=debug)",
                    self.log.level
                ),
            );
        }
        let url = self.store.url.expose();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return err(
                "store.url",
                "expected sqlite://PATH, sqlite::memory: or postgres://...".into(),
            );
        }
        self.validate_provider()?;
        if crate::phone::region(&self.numbers.default_region).is_none() {
            return err(
                "numbers.default_region",
                format!(
                    "`{}` is not an ISO 3166 alpha-2 region (e.g. DE, US)",
                    self.numbers.default_region
                ),
            );
        }
        for (alias, id) in &self.groups.aliases {
            if GroupId::parse(id).is_none() {
                return err(
                    &format!("groups.aliases.{alias}"),
                    format!("`{id}` is not a group id (expected <digits>@g.us)"),
                );
            }
        }
        for (key, value) in [
            ("slack.api_url", &self.slack.api_url),
            ("discord.api_url", &self.discord.api_url),
        ] {
            check_url(value).map_err(|reason| (key.to_string(), reason))?;
        }
        if self.discord.mode == DiscordMode::Gateway && !self.discord.bot_token.is_set() {
            return err("discord.bot_token", "required when discord.mode = \"gateway\"".into());
        }
        if !self.discord.public_key.trim().is_empty() {
            crate::adapters::discord::verify::public_key(&self.discord.public_key)
                .map_err(|reason| ("discord.public_key".to_string(), reason))?;
        }
        self.validate_permissions()
    }

    fn validate_provider(&self) -> Result<(), (String, String)> {
        for (name, p) in self.account_settings() {
            let table = if name == DEFAULT_ACCOUNT && std::ptr::eq(p, &self.provider) {
                "provider".to_string()
            } else {
                format!("accounts.{name}")
            };
            let key = |field: &str| format!("{table}.{field}");
            if table != "provider" {
                let well_formed = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
                if !well_formed {
                    return Err((table, "account names are lower-case letters, digits, - and _".into()));
                }
                // `/webhooks/<kind>` is `[provider]`'s webhook path.
                if name == DEFAULT_ACCOUNT || ProviderKind::ALL.iter().any(|k| k.as_str() == name) {
                    return Err((table, format!("`{name}` is reserved; name the account otherwise")));
                }
            }
            let counts = [
                ("timeout_ms", p.timeout.as_millis() as u64),
                ("rate_per_second", u64::from(p.rate_per_second)),
                ("burst", u64::from(p.burst)),
                ("max_connections", u64::from(p.max_connections)),
                ("add_chunk_size", p.add_chunk_size as u64),
            ];
            if let Some((field, _)) = counts.iter().find(|(_, value)| *value == 0) {
                return Err((key(field), "must be more than 0".into()));
            }
            if !p.base_url.is_empty() {
                check_url(&p.base_url).map_err(|r| (key("base_url"), r))?;
            }
            // The account's own keys, in the key and in the reason (which names
            // the kind's key, the one whose file is blamed).
            let own = |text: String| text.replacen("provider.", &format!("{table}."), 1);
            p.account().map_err(|(field, reason)| (own(field), own(reason)))?;
        }
        let names: Vec<&str> = self.account_settings().iter().map(|(n, _)| *n).collect();
        let known = |name: &str| names.contains(&name);
        for (channel, c) in &self.channels {
            let key = format!("channels.{channel}.account");
            permissions::check_channel_pattern(channel).map_err(|reason| (format!("channels.{channel}"), reason))?;
            if let Some(account) = c.account.as_deref().filter(|a| !known(a)) {
                return Err((
                    key,
                    format!("unknown account `{account}` (accounts: {})", names.join(", ")),
                ));
            }
        }
        for (role, r) in &self.permissions.roles {
            if let Some(account) = r.accounts.iter().flatten().find(|a| !known(a)) {
                return Err((
                    format!("permissions.roles.{role}.accounts"),
                    format!("unknown account `{account}` (accounts: {})", names.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn validate_permissions(&self) -> Result<(), (String, String)> {
        for (name, role) in &self.permissions.roles {
            let key = |field: &str| format!("permissions.roles.{name}.{field}");
            for command in &role.commands {
                if command != "*" && command.parse::<CommandId>().is_err() {
                    let ids: Vec<_> = CommandId::ALL.iter().map(|c| c.as_str()).collect();
                    return Err((
                        key("commands"),
                        format!("unknown command `{command}` (expected * or one of {})", ids.join(", ")),
                    ));
                }
            }
            for scope in &role.groups {
                GroupScope::parse(scope, &self.alias_map()).map_err(|reason| (key("groups"), reason))?;
            }
            for channel in role.channels.iter().flatten() {
                permissions::check_channel_pattern(channel).map_err(|reason| (key("channels"), reason))?;
            }
            if role.max_numbers == Some(0) {
                return Err((key("max_numbers"), "must be more than 0".into()));
            }
            match (role.approval.as_deref(), role.approval_over) {
                (None | Some("two-person"), None) | (Some("two-person"), Some(_)) => {}
                (Some(other), _) => {
                    return Err((
                        key("approval"),
                        format!("`{other}` is not an approval rule (expected \"two-person\")"),
                    ))
                }
                (None, Some(_)) => {
                    return Err((key("approval_over"), "needs approval = \"two-person\"".into()));
                }
            }
        }
        for (role, principals) in &self.permissions.bindings {
            let key = format!("permissions.bindings.{role}");
            if !self.permissions.roles.contains_key(role) {
                let known: Vec<_> = self.permissions.roles.keys().map(String::as_str).collect();
                return Err((key, format!("unknown role `{role}` (roles: {})", known.join(", "))));
            }
            for p in principals {
                Principal::parse(p).map_err(|reason| (key.clone(), reason))?;
            }
        }
        Ok(())
    }

    /// Aliases as typed ids: the sandbox's own (only with the sandbox
    /// provider), then `groups.aliases`, which may override them. Only call
    /// after `validate`.
    pub fn alias_map(&self) -> BTreeMap<String, GroupId> {
        let sandbox = self
            .account_settings()
            .iter()
            .any(|(_, p)| p.kind == ProviderKind::Sandbox);
        let built_in: &[(&str, &str)] = if sandbox {
            &crate::providers::sandbox::Sandbox::ALIASES
        } else {
            &[]
        };
        let configured = self.groups.aliases.iter().map(|(a, id)| (a.as_str(), id.as_str()));
        built_in
            .iter()
            .copied()
            .chain(configured)
            .filter_map(|(alias, id)| Some((alias.to_lowercase(), GroupId::parse(id)?)))
            .collect()
    }

    /// The configured default region; only call after `validate`.
    pub fn region(&self) -> phonenumber::country::Id {
        crate::phone::region(&self.numbers.default_region).expect("validated")
    }
}

fn check_url(value: &str) -> Result<(), String> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(format!("`{value}` is not an http(s) URL")),
    }
}

fn layer<S>(name: &str, source: S) -> Result<Layer, SettingsError>
where
    S: config::Source + Send + Sync + 'static,
{
    let config = Config::builder()
        .add_source(source)
        .build()
        .map_err(|e| plain_error(name, e))?;
    Ok(Layer {
        name: name.to_string(),
        config,
    })
}

fn plain_error(file: &str, error: config::ConfigError) -> SettingsError {
    SettingsError {
        file: file.to_string(),
        key: "-".into(),
        reason: error.to_string(),
    }
}

/// The last layer that sets `key` (or a parent of it), i.e. the one that won.
fn origin(layers: &[Layer], key: &str) -> String {
    let mut path = key.to_string();
    loop {
        if let Some(l) = layers
            .iter()
            .rev()
            .find(|l| l.config.get::<config::Value>(&path).is_ok())
        {
            return l.name.clone();
        }
        match path.rsplit_once('.') {
            Some((parent, _)) => path = parent.to_string(),
            None => return BUILT_IN.to_string(),
        }
    }
}

// Unknown keys are found with serde_ignored rather than `deny_unknown_fields`:
// it reports the full dotted path of every unknown key (`server.bindd`), where
// serde's error names only the field, and works inside maps such as roles.
fn deserialize(merged: Config, layers: &[Layer]) -> Result<Settings, SettingsError> {
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let de = serde_path_to_error::Deserializer::new(merged, &mut track);
        serde_ignored::deserialize(de, |path| unknown.push(path.to_string()))
    };
    match result {
        Ok(settings) => match unknown.first() {
            None => Ok(settings),
            Some(key) => Err(SettingsError {
                file: origin(layers, key),
                key: key.clone(),
                reason: "unknown key".into(),
            }),
        },
        Err(error) => {
            let key = track.path().to_string();
            let reason = error.to_string();
            // The config crate appends its own "for key ... in ..." text; keep the first part.
            let reason = reason.split(" for key").next().unwrap_or(&reason).to_string();
            Err(SettingsError {
                file: origin(layers, &key),
                key,
                reason,
            })
        }
    }
}

/// Used by `check-config` to describe what was loaded without secrets, with
/// a warning line for each setting that loads but will bite later.
pub fn describe(settings: &Settings, path: Option<&Path>) -> String {
    let mut text = summary(settings, path);
    for warning in warnings(settings) {
        text.push_str("\nwarning: ");
        text.push_str(&warning);
    }
    text
}

/// Settings that load but leave something not working, in words.
pub fn warnings(settings: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let discord = &settings.discord;
    let discord_on = !discord.public_key.trim().is_empty() || discord.mode == DiscordMode::Gateway;
    if discord_on && discord.application_id.trim().is_empty() {
        out.push(
            "discord.application_id is not set: waops takes it from each interaction, but \
             `waops discord register-commands` needs it (WAOPS__DISCORD__APPLICATION_ID)"
                .to_string(),
        );
    }
    out
}

fn summary(settings: &Settings, path: Option<&Path>) -> String {
    let provider = match settings.account_settings().as_slice() {
        [(DEFAULT_ACCOUNT, p)] => format!("provider {}", p.kind.as_str()),
        _ => format!("accounts {}", settings.describe_accounts()),
    };
    format!(
        "config ok{}: {provider}, store {}, {} roles, slack {}, discord {}",
        path.map(|p| format!(" ({})", p.display())).unwrap_or_default(),
        settings.store.url.expose().split(':').next().unwrap_or("?"),
        settings.permissions.roles.len(),
        if settings.slack.signing_secret.is_set() {
            "on"
        } else {
            "off"
        },
        if settings.discord.public_key.is_empty() {
            "off"
        } else {
            "on"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_every_secret_setting() {
        // Each Secret prints `[redacted]` or `[unset]` in Debug: as many as SECRET_KEYS lists.
        let shown = format!("{:?}", Settings::defaults());
        let secrets = shown.matches("[redacted]").count() + shown.matches("[unset]").count();
        assert_eq!(secrets, SECRET_KEYS.len(), "{shown}");
        let env: Vec<(String, String)> = SECRET_KEYS
            .iter()
            .map(|key| {
                let var = format!("WAOPS__{}", key.replace('.', "__").to_uppercase());
                let value = if *key == "store.url" {
                    "sqlite::memory:".to_string()
                } else {
                    format!("marker-{key}")
                };
                (var, value)
            })
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let settings = load_with("", &env).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("marker-"), "{shown}");
        assert_eq!(settings.slack.bot_token.expose(), "marker-slack.bot_token");
    }
    use std::io::Write;

    fn load_file(toml: &str) -> Result<Settings, SettingsError> {
        load_with(toml, &[])
    }

    fn load_with(toml: &str, env: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("waops.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(toml.as_bytes())
            .unwrap();
        Settings::load(&LoadOptions {
            config_file: Some(path),
            base_dir: Some(dir.path().to_path_buf()),
            env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        })
        .map_err(|mut e| {
            e.file = e.file.replace(&dir.path().display().to_string(), "DIR");
            e
        })
    }

    fn fails(toml: &str) -> (String, String, String) {
        let e = load_file(toml).expect_err("should fail");
        (e.file, e.key, e.reason)
    }

    #[test]
    fn defaults_are_sandbox_sqlite_console_admin() {
        let s = Settings::defaults();
        assert_eq!(s.provider.kind, ProviderKind::Sandbox);
        assert_eq!(s.store.url.expose(), "sqlite://waops.db");
        assert_eq!(s.permissions.bindings["admin"], ["console"]);
        assert_eq!(s.limits.confirm_over, 20);
    }

    #[test]
    fn layers_later_wins() {
        let s = load_with(
            "[limits]\nconfirm_over = 5\nmax_numbers_per_add = 10\n",
            &[
                ("WAOPS__LIMITS__CONFIRM_OVER", "7"),
                ("WAOPS__SLACK__SIGNING_SECRET", "s3cr3t"),
            ],
        )
        .unwrap();
        assert_eq!(s.limits.confirm_over, 7);
        assert_eq!(s.limits.max_numbers_per_add, 10);
        assert_eq!(s.limits.max_numbers_per_add, 10);
        assert_eq!(s.slack.signing_secret.expose(), "s3cr3t");
        assert_eq!(s.server.bind, "0.0.0.0:8080");
    }

    #[test]
    fn waops_config_env_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(&path, "[display]\nresults = \"ephemeral\"\n").unwrap();
        let env = HashMap::from([("WAOPS_CONFIG".to_string(), path.display().to_string())]);
        let s = Settings::load(&LoadOptions {
            env: Some(env),
            base_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(s.display.results, ResultVisibility::Ephemeral);
    }

    #[test]
    fn unknown_keys_name_file_and_key() {
        assert_eq!(
            fails("[server]\nbindd = \"x\"\n"),
            ("DIR/waops.toml".into(), "server.bindd".into(), "unknown key".into())
        );
        assert_eq!(fails("[nope]\na = 1\n").1, "nope");
        assert_eq!(
            fails("[permissions.roles.x]\ncommands = [\"add\"]\ncolour = 1\n").1,
            "permissions.roles.x.colour"
        );
        let e = load_with("", &[("WAOPS__SERVER__NOPE", "1")]).unwrap_err();
        assert_eq!((e.file.as_str(), e.key.as_str()), ("environment", "server.nope"));
    }

    #[test]
    fn the_sandbox_aliases_exist_only_with_the_sandbox() {
        let sandbox = load_with("", &[]).unwrap().alias_map();
        assert_eq!(
            sandbox.keys().map(String::as_str).collect::<Vec<_>>(),
            ["sales", "support"]
        );
        let periskope = load_with(
            "[provider]\nkind = \"periskope\"\ntoken = \"t\"\nphone = \"+4915100000000\"\n",
            &[],
        )
        .unwrap();
        assert!(periskope.alias_map().is_empty(), "{:?}", periskope.alias_map());
        let own = load_with(
            "[provider]\nkind = \"periskope\"\ntoken = \"t\"\nphone = \"+4915100000000\"\n\
             [groups.aliases]\nSales = \"120363000000000001@g.us\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(own.alias_map()["sales"].as_str(), "120363000000000001@g.us");
        // A role naming the sandbox's alias on a real provider is a configuration error.
        let e = load_with(
            "[provider]\nkind = \"periskope\"\ntoken = \"t\"\nphone = \"+4915100000000\"\n\
             [permissions.roles.x]\ncommands = [\"add\"]\ngroups = [\"sales\"]\n",
            &[],
        )
        .unwrap_err();
        assert!(e.reason.contains("unknown alias"), "{e:?}");
    }

    #[test]
    fn the_provider_table_becomes_one_account_per_kind() {
        let periskope = load_with(
            "[provider]\nkind = \"periskope\"\ntoken = \"t\"\nphone = \" +4915100000000 \"\n",
            &[],
        )
        .unwrap();
        match periskope.provider.account().unwrap() {
            Account::Periskope { token, phone } => assert_eq!((token.expose(), phone.as_str()), ("t", "4915100000000")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load_with("", &[]).unwrap().provider.account(),
            Ok(Account::Sandbox)
        ));
        let wawp = load_with(
            "[provider]\nkind = \"wawp\"\ninstance_id = \"i-1\"\naccess_token = \"a\"\n",
            &[],
        )
        .unwrap();
        assert!(matches!(
            wawp.provider.account(),
            Ok(Account::Wawp { instance_id, .. }) if instance_id == "i-1"
        ));
        // Secrets stay redacted in the account's Debug too.
        assert!(!format!("{:?}", periskope.provider.account().unwrap()).contains("\"t\""));
    }

    #[test]
    fn check_config_warns_about_a_missing_discord_application_id() {
        let public = ed25519_dalek::SigningKey::from_bytes(&[42; 32]).verifying_key();
        let key = format!("[discord]\npublic_key = \"{}\"\n", hex::encode(public.as_bytes()));
        let key = key.as_str();
        let missing = load_with(key, &[]).unwrap();
        let text = describe(&missing, None);
        assert!(
            text.lines()
                .nth(1)
                .unwrap_or_default()
                .starts_with("warning: discord.application_id is not set"),
            "{text}"
        );
        let set = load_with(&format!("{key}application_id = \"42\"\n"), &[]).unwrap();
        assert_eq!(describe(&set, None).lines().count(), 1, "no warning");
        assert!(
            warnings(&load_with("", &[]).unwrap()).is_empty(),
            "Discord off: nothing to warn about"
        );
    }

    #[test]
    fn type_errors_name_file_and_key() {
        let (file, key, reason) = fails("[server]\nmax_body_bytes = \"lots\"\n");
        assert_eq!(
            (file.as_str(), key.as_str()),
            ("DIR/waops.toml", "server.max_body_bytes")
        );
        assert!(reason.contains("invalid"), "{reason}");
        assert_eq!(fails("[provider]\nkind = \"twilio\"\n").1, "provider.kind");
    }

    #[test]
    fn semantic_errors() {
        let cases: &[(&str, &str, &str)] = &[
            ("[server]\nbind = \"localhost\"\n", "server.bind", "is not an address"),
            ("[store]\nurl = \"mysql://x\"\n", "store.url", "expected sqlite"),
            (
                "[provider]\nbase_url = \"not a url\"\n",
                "provider.base_url",
                "not an http(s) URL",
            ),
            (
                "[provider]\nkind = \"periskope\"\n",
                "provider.token",
                "required when provider.kind = \"periskope\"",
            ),
            (
                "[provider]\nkind = \"periskope\"\ntoken = \"t\"\n",
                "provider.phone",
                "required",
            ),
            (
                "[provider]\nkind = \"wawp\"\ninstance_id = \"i\"\n",
                "provider.access_token",
                "required",
            ),
            (
                "[provider]\nadd_chunk_size = 0\n",
                "provider.add_chunk_size",
                "more than 0",
            ),
            (
                "[provider]\nmax_connections = 0\n",
                "provider.max_connections",
                "more than 0",
            ),
            (
                "[numbers]\ndefault_region = \"Germany\"\n",
                "numbers.default_region",
                "not an ISO 3166",
            ),
            (
                "[groups.aliases]\nops = \"12345\"\n",
                "groups.aliases.ops",
                "not a group id",
            ),
            (
                "[digests]\nmin_every = \"5 minutes\"\n",
                "digests.min_every",
                "not a duration",
            ),
            (
                "[limits]\ndedupe_window = \"2 minutes\"\n",
                "limits.dedupe_window",
                "not a duration",
            ),
            ("[slack]\napi_url = \"slack\"\n", "slack.api_url", "not an http(s) URL"),
            (
                "[discord]\nmode = \"gateway\"\n",
                "discord.bot_token",
                "required when discord.mode = \"gateway\"",
            ),
            (
                "[discord]\npublic_key = \"abc\"\n",
                "discord.public_key",
                "expected 64 hex characters",
            ),
            ("[log]\nlevel = \"[[\"\n", "log.level", "not a log filter"),
            (
                "[permissions.bindings]\nops = [\"console\"]\n",
                "permissions.bindings.ops",
                "unknown role `ops` (roles: admin)",
            ),
            (
                "[permissions.bindings]\nadmin = [\"slack:U123\"]\n",
                "permissions.bindings.admin",
                "malformed principal",
            ),
            (
                "[permissions.roles.x]\ncommands = [\"ad\"]\n",
                "permissions.roles.x.commands",
                "unknown command `ad`",
            ),
            (
                "[permissions.roles.x]\ngroups = [\"nosuchalias\"]\n",
                "permissions.roles.x.groups",
                "unknown alias",
            ),
            (
                "[permissions.roles.x]\nchannels = [\"C0SALES\"]\n",
                "permissions.roles.x.channels",
                "expected PLATFORM:ID",
            ),
            (
                "[permissions.roles.x]\napproval = \"three-person\"\n",
                "permissions.roles.x.approval",
                "not an approval rule",
            ),
            (
                "[permissions.roles.x]\napproval_over = 3\n",
                "permissions.roles.x.approval_over",
                "needs approval",
            ),
            (
                "[permissions.roles.x]\nmax_numbers = 0\n",
                "permissions.roles.x.max_numbers",
                "more than 0",
            ),
            // Accounts: each table checked like [provider], and what names them.
            (
                "[accounts.de]\nkind = \"sandbox\"\n[permissions.roles.x]\naccounts = [\"fr\"]\n",
                "permissions.roles.x.accounts",
                "unknown account `fr` (accounts: de)",
            ),
            (
                "[accounts.de]\nkind = \"sandbox\"\n[channels.\"slack:C1\"]\naccount = \"fr\"\n",
                "channels.slack:C1.account",
                "unknown account `fr`",
            ),
            (
                "[accounts.us]\nkind = \"periskope\"\ntoken = \"t\"\n",
                "accounts.us.phone",
                "required when accounts.us.kind = \"periskope\"",
            ),
            ("[accounts.wuts]\nkind = \"sandbox\"\n", "accounts.wuts", "is reserved"),
            ("[accounts.De]\nkind = \"sandbox\"\n", "accounts.De", "lower-case"),
            (
                "[accounts.de]\nkind = \"sandbox\"\nrate_per_second = 0\n",
                "accounts.de.rate_per_second",
                "must be more than 0",
            ),
        ];
        for (toml, key, reason) in cases {
            let (file, got_key, got_reason) = fails(toml);
            assert_eq!(file, "DIR/waops.toml", "{toml}");
            assert_eq!(&got_key, key, "{toml}");
            assert!(got_reason.contains(reason), "{toml}: {got_reason}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = load_with(
            "",
            &[
                ("WAOPS__PROVIDER__TOKEN", "tok-123"),
                ("WAOPS__SLACK__BOT_TOKEN", "xoxb-1"),
            ],
        )
        .unwrap();
        let shown = format!("{s:?} {}", s.provider.token);
        assert!(!shown.contains("tok-123") && !shown.contains("xoxb-1"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }
}
