//! `add <group> <numbers…> [--dry-run] [--yes]`: add people to a group.

pub use waops_core::command::add::*;

use super::{Call, CommandError};
use crate::core::messages;
use crate::core::reply::Reply;
use crate::core::Platform;
use crate::group_ref::{GroupId, GroupInfo};
use crate::phone;
use crate::phone::E164;
use crate::providers::{AddOutcome, AddResult, ProviderError};
use crate::store::{Confirmation, KeyClaim, Store};

/// Whether running these arguments reaches the provider: not for a dry run, a
/// preview waiting for confirmation, or numbers that fail validation.
pub fn calls_provider(args: &Args, list: &phone::NumberList, settings: &crate::settings::Settings) -> bool {
    !args.dry_run && list.invalid.is_empty() && (args.yes || list.valid.len() <= settings.limits.confirm_over)
}

/// The refusal for invalid numbers, or more than `limits.max_numbers_per_add`
/// or the role's `max_numbers` (add, remove, promote, demote).
pub fn refuse_numbers(call: &Call<'_>, list: &phone::NumberList) -> Option<Reply> {
    if !list.invalid.is_empty() {
        return Some(messages::invalid_numbers(&list.invalid));
    }
    let count = list.valid.len();
    let limit = call.ctx.settings.limits.max_numbers_per_add;
    if count > limit {
        return Some(messages::too_many_numbers(count, limit, false));
    }
    let max = call.grant.max_numbers.filter(|max| count > *max)?;
    Some(messages::too_many_numbers(count, max, true))
}

/// What an add did, for its reply and its audit row.
#[derive(Debug)]
pub struct Added {
    /// The reply.
    pub reply: Reply,
    /// A provider error that stopped it part-way (the reply shows what was done).
    pub partial: Option<ProviderError>,
    /// Answered with an earlier identical add's result: nothing was sent.
    pub deduplicated: bool,
    /// A command over several groups (offboarding): one audit row each.
    pub per_group: Vec<GroupRow>,
}

/// One group's audit row of a command over several groups.
#[derive(Debug)]
pub struct GroupRow {
    /// The group's id.
    pub group_id: String,
    /// The group's account.
    pub account: Option<String>,
    /// Numbers sent for it.
    pub numbers: usize,
    /// `ok`, or `partial:<kind>` when it stopped part-way.
    pub outcome: String,
}

impl From<Reply> for Added {
    fn from(reply: Reply) -> Self {
        Added {
            reply,
            partial: None,
            deduplicated: false,
            per_group: Vec::new(),
        }
    }
}

/// Validates, previews or adds `list`, the numbers of `args` as `numbers` read them.
pub async fn run(
    call: &Call<'_>,
    args: Args,
    group: GroupInfo,
    list: phone::NumberList,
) -> Result<Added, CommandError> {
    let settings = &call.ctx.settings;
    if let Some(refusal) = refuse_numbers(call, &list) {
        return Err(CommandError::User(refusal));
    }
    let count = list.valid.len();
    if args.dry_run {
        return Ok(messages::add_dry_run(&group, &list.valid, &list.duplicates).into());
    }
    let approval = super::approval::needed(call, count);
    if (count > settings.limits.confirm_over && !args.yes) || approval {
        // Chat frontends get Apply/Cancel buttons; the console asks for --yes.
        let confirmation = preview_confirmation(call, approval).await?;
        let reply = messages::add_needs_confirmation(
            &group,
            &list.valid,
            &list.duplicates,
            settings.limits.confirm_over,
            confirmation.as_deref(),
        );
        return Ok(approval_preview(reply, approval).into());
    }
    let numbers: Vec<_> = list.valid.iter().map(|a| a.number.clone()).collect();
    let window = settings.limits.dedupe_window;
    let mut claimed = None;
    if !window.is_zero() {
        let key = dedupe_key(call, &group.id, &numbers);
        let now = call.ctx.clock.now();
        match call.ctx.store.claim_key(&key, now, window).await {
            Ok(KeyClaim::New) => claimed = Some(ClaimedKey::new(call.ctx.store.clone(), key)),
            Ok(KeyClaim::Seen { at, result: Some(json) }) => {
                if let Ok(earlier) = serde_json::from_str::<Reply>(&json) {
                    return Ok(Added {
                        deduplicated: true,
                        ..messages::add_repeated(earlier, at, now).into()
                    });
                }
            }
            Ok(KeyClaim::Seen { at, result: None }) => {
                return Err(CommandError::User(messages::add_still_running(at, now)));
            }
            // The store being down must not stop the add itself; it just
            // cannot be recognised as a repeat this time.
            Err(e) => tracing::warn!(error = format!("{e:#}"), "add not checked for repeats"),
        }
    }
    let (results, partial) = match add_paced(call, &group, &numbers).await {
        Ok(results) => results,
        Err(e) => {
            // Nothing was added: a repeat should really try again.
            if let Some(claimed) = claimed {
                claimed.forget().await;
            }
            return Err(e);
        }
    };
    let mut reply = messages::add_result(&group, &results, &list.duplicates, call.result_visibility());
    if let Some(e) = &partial {
        let done = results
            .iter()
            .filter(|r| !matches!(&r.outcome, AddOutcome::Failed(f) if f == messages::NOT_SENT))
            .count();
        reply = messages::add_stopped(
            reply,
            done,
            numbers.len(),
            e,
            call.ctx.accounts.of(&group).provider.kind(),
        );
    }
    if let Some(claimed) = claimed {
        claimed.finish(&reply).await;
    }
    Ok(Added {
        partial,
        ..reply.into()
    })
}

/// A dedupe key this add claimed: `finish` keeps the result for repeats, and
/// `forget` (or dropping it, when shutdown drops the task part-way) gives it
/// up, so nothing leaves "still running" behind for the whole window.
struct ClaimedKey {
    store: Store,
    key: Option<String>,
}

impl ClaimedKey {
    fn new(store: Store, key: String) -> Self {
        ClaimedKey { store, key: Some(key) }
    }

    /// Keeps `reply` as the answer to repeats within the window.
    async fn finish(mut self, reply: &Reply) {
        let Some(key) = self.key.take() else { return };
        let stored = serde_json::to_string(reply).map_err(anyhow::Error::from);
        if let Err(e) = async { self.store.finish_key(&key, &stored?).await }.await {
            tracing::warn!(error = format!("{e:#}"), "add result not kept for repeats");
        }
    }

    /// Gives the key up, so a repeat runs for real.
    async fn forget(mut self) {
        if let Some(key) = self.key.take() {
            forget_key(self.store.clone(), key).await;
        }
    }
}

async fn forget_key(store: Store, key: String) {
    if let Err(e) = store.forget_key(&key).await {
        tracing::warn!(error = format!("{e:#}"), "dedupe key not dropped");
    }
}

/// The fallback for a task dropped part-way (shutdown's interrupt).
impl Drop for ClaimedKey {
    fn drop(&mut self) {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let Some(key) = self.key.take() else { return };
        let forget = forget_key(self.store.clone(), key);
        // Forgotten before the drop returns where the runtime allows it:
        // shutdown closes the store right after dropping interrupted tasks.
        // This runs once per interrupted add, never on the ack path.
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| handle.block_on(forget));
            }
            Ok(handle) => drop(handle.spawn(forget)),
            Err(_) => tracing::warn!("dedupe key not dropped: no runtime"),
        }
    }
}

/// Who adds which numbers (sorted) to which group: a repeat has the same key
/// whatever order or spelling the numbers were typed in.
fn dedupe_key(call: &Call<'_>, group: &GroupId, numbers: &[E164]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&str> = numbers.iter().map(E164::as_str).collect();
    sorted.sort_unstable();
    let text = format!(
        "{}\n{}\n{}\n{}",
        call.inv.platform.as_str(),
        call.inv.caller(),
        group.as_str(),
        sorted.join(",")
    );
    format!("add:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// The preview's confirmation id: none in the console, which confirms with
/// `--yes`, and which cannot ask a second person (then it is refused).
pub async fn preview_confirmation(call: &Call<'_>, approval: bool) -> Result<Option<String>, CommandError> {
    match call.inv.platform {
        Platform::Console if approval => Err(CommandError::User(messages::approval_needs_chat())),
        Platform::Console => Ok(None),
        _ => Ok(Some(save_confirmation(call).await?)),
    }
}

/// A preview whose Apply asks a second person when the two-person rule holds.
pub fn approval_preview(reply: Reply, approval: bool) -> Reply {
    if approval {
        messages::for_approval(reply)
    } else {
        reply
    }
}

/// How long a preview can be applied.
pub const CONFIRM_WITHIN: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

/// Stores the previewed command (with `--yes`) for the caller's Apply.
pub async fn save_confirmation(call: &Call<'_>) -> Result<String, CommandError> {
    let now = call.ctx.clock.now();
    let confirmation = Confirmation {
        id: uuid::Uuid::new_v4().simple().to_string(),
        platform: call.inv.platform.as_str().into(),
        principal: call.inv.caller().to_string(),
        channel: call.inv.channel.to_string(),
        command_text: format!("{} --yes", call.inv.text.trim_end()),
        expires_at: now + CONFIRM_WITHIN,
    };
    call.ctx.store.create_confirmation(&confirmation, now).await?;
    Ok(confirmation.id)
}

/// Sends the numbers in the provider's chunks, pausing between them, reporting
/// progress. An error after the first chunk does not lose what was done: the
/// rest are marked as not sent and the error is returned beside the results.
async fn add_paced(
    call: &Call<'_>,
    group: &GroupInfo,
    numbers: &[E164],
) -> Result<(Vec<AddResult>, Option<ProviderError>), CommandError> {
    let provider = &call.ctx.accounts.of(group).provider;
    let mut progress = Paced::new(call, numbers.len());
    let (results, stopped) = progress
        .send(
            provider.pacing(),
            numbers,
            |chunk| async move { provider.add(&group.id, &chunk).await },
            |n| AddResult {
                number: n.clone(),
                outcome: AddOutcome::Failed(messages::NOT_SENT.into()),
            },
        )
        .await;
    match stopped {
        // Nothing was done: the error is the answer.
        Some(e)
            if results
                .iter()
                .all(|r| r.outcome == AddOutcome::Failed(messages::NOT_SENT.into())) =>
        {
            Err(e.into())
        }
        stopped => Ok((results, stopped)),
    }
}

/// Sends numbers in the provider's chunks with its pause between requests,
/// across one or several calls (one per group), and reports progress over the
/// whole.
pub struct Paced<'c, 'a> {
    call: &'c Call<'a>,
    total: usize,
    sent: usize,
    requests: usize,
}

impl<'c, 'a> Paced<'c, 'a> {
    /// For `total` numbers in all.
    pub fn new(call: &'c Call<'a>, total: usize) -> Self {
        Paced {
            call,
            total,
            sent: 0,
            requests: 0,
        }
    }

    /// Sends `numbers` chunk by chunk, paced by the group's account; after an error the rest become
    /// `not_sent`, and the error comes back beside the results.
    pub async fn send<T, Fut>(
        &mut self,
        pacing: crate::providers::Pacing,
        numbers: &[E164],
        send: impl Fn(Vec<E164>) -> Fut,
        not_sent: impl Fn(&E164) -> T,
    ) -> (Vec<T>, Option<ProviderError>)
    where
        Fut: std::future::Future<Output = Result<Vec<T>, ProviderError>>,
    {
        let mut results = Vec::with_capacity(numbers.len());
        for chunk in numbers.chunks(pacing.chunk_size) {
            if self.requests > 0 && !pacing.pause.is_zero() {
                tokio::time::sleep(pacing.pause).await;
            }
            self.requests += 1;
            match send(chunk.to_vec()).await {
                Ok(chunk_results) => results.extend(chunk_results),
                Err(e) => {
                    let done = results.len();
                    results.extend(numbers[done..].iter().map(&not_sent));
                    self.sent += numbers.len();
                    return (results, Some(e));
                }
            }
            self.sent += chunk.len();
            if let Some(progress) = self.call.progress {
                progress.update(self.sent.min(self.total), self.total);
            }
        }
        (results, None)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::commands::Command;
    use crate::store::{KeyClaim, Store};

    /// A command's task dropped by its runtime's shutdown gives its claim up,
    /// so the user's retry runs instead of waiting out the dedupe window
    /// (`waops serve` and `exec` run on a multi-thread runtime; on SQLite a
    /// claim left behind by a killed process is dropped at the next start).
    #[test]
    fn a_claim_dropped_by_its_runtimes_shutdown_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keys.db").display());
        let setup = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = setup.block_on(async {
            let store = Store::connect(&url).await.unwrap();
            store.migrate().await.unwrap();
            store
        });
        let (now, ttl) = (jiff::Timestamp::now(), Duration::from_secs(120));
        let key = "add-key".to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        assert_eq!(
            runtime.block_on(store.claim_key(&key, now, ttl)).unwrap(),
            KeyClaim::New
        );
        let guard = super::ClaimedKey::new(store.clone(), key.clone());
        let (running, started) = tokio::sync::oneshot::channel();
        runtime.spawn(async move {
            let _guard = guard;
            let _ = running.send(());
            std::future::pending::<()>().await
        });
        runtime.block_on(started).unwrap();
        drop(runtime);
        assert_eq!(
            setup.block_on(store.claim_key(&key, now, ttl)).unwrap(),
            KeyClaim::New,
            "the claim was given up"
        );
    }

    fn args(text: &str) -> super::Args {
        match Command::parse(text).unwrap() {
            Command::Add(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_groups_numbers_and_flags() {
        let a = args(r#"add "Sales Team" +49 151 1234 5678, 0151-1234-5679 --dry-run"#);
        assert_eq!(a.group, "Sales Team");
        assert!(a.dry_run && !a.yes);
        let texts: Vec<_> = a.numbers.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(texts, ["+49", "151", "1234", "5678,", "0151-1234-5679"]);
        let a = args("add sales --yes +4915112345678");
        assert!(a.yes);
        assert_eq!(a.numbers.len(), 1);
    }

    #[test]
    fn line_breaks_separate_numbers() {
        let a = args("add sales\n0151 1234 5678\n0151 1234 5679");
        let list = crate::phone::parse_list(&a.numbers, crate::phone::region("DE").unwrap());
        assert_eq!(list.valid.len(), 2, "{list:?}");
    }

    #[test]
    fn needs_group_and_numbers() {
        assert_eq!(Command::parse("add").unwrap_err().message, "missing <group>");
        assert_eq!(Command::parse("add sales").unwrap_err().message, "missing <numbers…>");
        assert_eq!(
            Command::parse("add sales --dry-run").unwrap_err().message,
            "missing <numbers…>"
        );
    }
}
