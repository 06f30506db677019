//! WhatsApp providers behind one trait. The core holds an `Arc<dyn Provider>`
//! and never sees a provider's wire format.

pub mod http;
pub mod periskope;
pub mod sandbox;
pub mod wawp;
pub mod webhook;
pub mod wuts;

use crate::settings::ProviderSettings;
pub use waops_core::provider::*;

tokio::task_local! {
    /// The trace id of the last provider answer of the command running on
    /// this task: a task-local rather than a field of every provider method's
    /// result, since only the audit row reads it.
    static LAST_TRACE: std::cell::RefCell<Option<String>>;
}

/// Runs `command` and returns its output with the trace id of the last
/// provider answer it got (SPEC section 8: audit rows carry it on success too).
pub async fn traced<F: std::future::Future>(command: F) -> (F::Output, Option<String>) {
    LAST_TRACE
        .scope(std::cell::RefCell::new(None), async {
            let output = command.await;
            (output, LAST_TRACE.with(|t| t.borrow_mut().take()))
        })
        .await
}

/// Notes a provider answer's trace id for `traced` (no effect outside it).
pub(crate) fn note_trace(trace_id: Option<&str>) {
    if let Some(id) = trace_id {
        let _ = LAST_TRACE.try_with(|t| *t.borrow_mut() = Some(id.to_owned()));
    }
}

/// How bulk adds are split and spaced, from `provider.add_chunk_size` and
/// `provider.add_pause_ms`.
pub fn pacing(settings: &ProviderSettings) -> Pacing {
    Pacing {
        chunk_size: settings.add_chunk_size.max(1),
        pause: settings.add_pause,
    }
}

/// Builds the configured provider.
pub fn build(settings: &ProviderSettings, clock: crate::core::Clock) -> anyhow::Result<std::sync::Arc<dyn Provider>> {
    use crate::settings::Account;
    let account = settings
        .account()
        .map_err(|(key, reason)| anyhow::anyhow!("{key}: {reason}"))?;
    Ok(match account {
        Account::Sandbox => std::sync::Arc::new(sandbox::Sandbox::new(clock)),
        Account::Periskope { token, phone } => {
            std::sync::Arc::new(periskope::Periskope::new(settings, &token, &phone)?)
        }
        Account::Wuts { token } => std::sync::Arc::new(wuts::Wuts::new(settings, &token)?),
        Account::Wawp {
            instance_id,
            access_token,
        } => std::sync::Arc::new(wawp::Wawp::new(settings, instance_id, access_token)?),
    })
}
