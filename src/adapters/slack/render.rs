//! Block Kit rendering of a `Reply` as slack-morphism's models, within Slack's
//! limits (50 blocks per message, 3000 characters per section text, 10 context
//! elements), with every user- or provider-controlled string escaped so it
//! cannot mention, link or format.

use serde::Serialize;
use slack_morphism::prelude::{
    SlackActionBlockElement, SlackActionsBlock, SlackApiPostWebhookMessageRequest, SlackBlock, SlackBlockButtonElement,
    SlackBlockButtonStyle, SlackBlockMarkDownText, SlackBlockText, SlackCommandEventResponse, SlackContextBlock,
    SlackContextBlockElement, SlackMessageContent, SlackMessageResponseType, SlackSectionBlock,
};

use crate::core::reply::{cut, ButtonAction, Reply, Rich, Span, Table, Visibility};

/// Most blocks in one message.
pub const MAX_BLOCKS: usize = 50;
/// Most characters in one section's text.
pub const MAX_SECTION: usize = 3000;
/// Most elements in one context block.
const MAX_CONTEXT: usize = 10;

/// Escapes text for mrkdwn: `&`, `<`, `>` as entities (no mentions, links or
/// `<!channel>`), and formatting characters wrapped in zero-width spaces so they
/// cannot bold, italicise, strike or quote.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '*' | '_' | '~' | '`' => {
                out.push('\u{200B}');
                out.push(c);
                out.push('\u{200B}');
            }
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Text inside a code span or block: entities only, and backticks replaced so
/// the span cannot be closed early.
fn escape_code(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "'")
}

/// One line of spans as mrkdwn.
pub fn mrkdwn(line: &Rich) -> String {
    spans(line, true)
}

fn spans(line: &Rich, bold: bool) -> String {
    line.0
        .iter()
        .map(|span| match span {
            Span::Text(t) => escape(t),
            Span::Strong(t) if bold => format!("*{}*", escape(t)),
            Span::Strong(t) => escape(t),
            Span::Code(t) => format!("`{}`", escape_code(t)),
            Span::Link(url) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => format!("<{}>", escape_code(u.as_str())),
                _ => escape(url),
            },
        })
        .collect()
}

fn mrkdwn_text(text: String) -> SlackBlockMarkDownText {
    SlackBlockMarkDownText::new(text).with_verbatim(true)
}

fn section(text: String) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(SlackBlockText::MarkDown(mrkdwn_text(text)))
        .into()
}

fn table_lines(table: &Table) -> Vec<String> {
    table.aligned_lines().iter().map(|line| escape_code(line)).collect()
}

/// Packs lines into sections of at most `MAX_SECTION` characters, using at most
/// `budget` sections; lines that do not fit are counted into "… and N more".
fn pack(lines: &[String], budget: usize, wrap: Option<&str>) -> Vec<SlackBlock> {
    let overhead = wrap.map_or(0, |w| 2 * w.len() + 2);
    let limit = MAX_SECTION - overhead - 40;
    let mut sections: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut used = 0;
    for line in lines {
        let line = cut(line, limit);
        let needed = if current.is_empty() {
            line.chars().count()
        } else {
            current.chars().count() + 1 + line.chars().count()
        };
        if needed > limit {
            if sections.len() + 1 >= budget {
                break;
            }
            sections.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
        used += 1;
    }
    if !current.is_empty() {
        sections.push(current);
    }
    let left = lines.len() - used;
    let mut blocks: Vec<SlackBlock> = sections
        .into_iter()
        .map(|s| match wrap {
            Some(w) => section(format!("{w}\n{s}\n{w}")),
            None => section(s),
        })
        .collect();
    if left > 0 {
        blocks.push(section(format!("… and {left} more")));
    }
    blocks
}

/// A message for a `response_url`: the content, where it shows, and whether
/// it replaces the message it answers ("Working on it…", a preview).
#[derive(Debug, Serialize)]
pub struct ResponseUrlMessage {
    #[serde(flatten)]
    message: SlackApiPostWebhookMessageRequest,
    response_type: SlackMessageResponseType,
}

/// The answer in the slash command's HTTP response.
pub fn inline(reply: &Reply) -> SlackCommandEventResponse {
    SlackCommandEventResponse::new(content(reply)).with_response_type(response_type(reply))
}

/// A `response_url` post of `reply`.
pub fn response_url_message(reply: &Reply, replace_original: bool) -> ResponseUrlMessage {
    ResponseUrlMessage {
        message: SlackApiPostWebhookMessageRequest::new(content(reply)).with_replace_original(replace_original),
        response_type: response_type(reply),
    }
}

/// Where the reply shows.
pub fn response_type(reply: &Reply) -> SlackMessageResponseType {
    match reply.visibility {
        Visibility::Ephemeral => SlackMessageResponseType::Ephemeral,
        Visibility::Channel => SlackMessageResponseType::InChannel,
    }
}

/// The reply's text (the notification fallback) and blocks.
pub fn content(reply: &Reply) -> SlackMessageContent {
    // The whole title is bold, so its own emphasis is not marked again.
    let title = cut(&spans(&reply.title, false), MAX_SECTION - 4);
    let mut blocks = vec![section(format!("*{title}*"))];
    // Room for the fixed blocks: title, fields, buttons, footer, and a cut marker each.
    let reserved = 1 + 1 + 1 + 1 + 3;
    let mut budget = MAX_BLOCKS - reserved;

    let lines: Vec<String> = reply.lines.iter().map(mrkdwn).collect();
    let table = reply.table.as_ref().map(table_lines).unwrap_or_default();
    let table_budget = if table.is_empty() { 0 } else { (budget / 2).max(1) };
    if !lines.is_empty() {
        let part = pack(&lines, budget - table_budget, None);
        budget -= part.len().min(budget);
        blocks.extend(part);
    }
    if !reply.fields.is_empty() {
        let text = reply
            .fields
            .iter()
            .map(|(name, value)| format!("*{}:* {}", escape(name), mrkdwn(value)))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(section(cut(&text, MAX_SECTION)));
    }
    if !table.is_empty() {
        blocks.extend(pack(&table, budget.max(1), Some("```")));
    }
    if !reply.buttons.is_empty() {
        let elements = reply
            .buttons
            .iter()
            .map(|b| {
                let style = match b.action {
                    ButtonAction::Apply | ButtonAction::RequestApproval | ButtonAction::Approve => {
                        SlackBlockButtonStyle::Primary
                    }
                    ButtonAction::Cancel | ButtonAction::Reject => SlackBlockButtonStyle::Danger,
                };
                let action_id = b.action.id();
                SlackActionBlockElement::Button(
                    SlackBlockButtonElement::new(b.label.as_str().into())
                        .with_action_id(action_id.into())
                        .with_style(style)
                        .with_value(b.value.clone()),
                )
            })
            .collect();
        blocks.push(SlackActionsBlock::new(elements).into());
    }
    if !reply.footer.is_empty() {
        let mut elements: Vec<SlackContextBlockElement> = reply
            .footer
            .iter()
            .take(MAX_CONTEXT)
            .map(|f| SlackContextBlockElement::MarkDown(mrkdwn_text(cut(&mrkdwn(f), MAX_SECTION))))
            .collect();
        if reply.footer.len() > MAX_CONTEXT {
            elements.truncate(MAX_CONTEXT - 1);
            let more = format!("… and {} more", reply.footer.len() - (MAX_CONTEXT - 1));
            elements.push(SlackContextBlockElement::MarkDown(mrkdwn_text(more)));
        }
        blocks.push(SlackContextBlock::new(elements).into());
    }
    blocks.truncate(MAX_BLOCKS);
    SlackMessageContent::new()
        .with_text(cut(&escape(&reply.title.plain()), 3000))
        .with_blocks(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reply::{Reply, Status};
    use serde_json::Value;

    /// The inline answer as the JSON Slack receives.
    fn message(reply: &Reply) -> Value {
        serde_json::to_value(inline(reply)).expect("Slack's models serialize")
    }

    fn texts(message: &Value) -> Vec<String> {
        message["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str().map(str::to_string))
            .collect()
    }

    #[test]
    fn escapes_mentions_links_and_formatting() {
        let reply = Reply::info(Rich::new().text("Joined ").strong("<!channel> *pwn* <@U123>"))
            .line(Rich::new().text("<https://evil.example|click> & `x`"))
            .line(Rich::new().code("a`b<c>"));
        let m = message(&reply);
        let all = serde_json::to_string(&m).unwrap();
        for bad in ["<!channel>", "<@U123>", "<https://evil", "*pwn*", "`x`", "a`b"] {
            assert!(!all.contains(bad), "{bad} in {all}");
        }
        assert_eq!(
            texts(&m)[0],
            "*Joined &lt;!channel&gt; \u{200B}*\u{200B}pwn\u{200B}*\u{200B} &lt;@U123&gt;*"
        );
        assert_eq!(
            texts(&m)[1],
            "&lt;https://evil.example|click&gt; &amp; \u{200B}`\u{200B}x\u{200B}`\u{200B}\n`a'b&lt;c&gt;`"
        );
    }

    #[test]
    fn links_we_build_stay_links() {
        let reply = Reply::info("x").line(Rich::new().link("https://chat.whatsapp.com/Kx7Pq2Lm9Zt4Rw8Yb3Nc"));
        assert_eq!(
            texts(&message(&reply))[1],
            "<https://chat.whatsapp.com/Kx7Pq2Lm9Zt4Rw8Yb3Nc>"
        );
    }

    #[test]
    fn long_results_stay_within_limits_and_say_what_was_cut() {
        let mut reply = Reply::new(Status::Ok, Visibility::Channel, "History");
        for i in 0..20_000 {
            reply = reply.line(format!(
                "2026-11-24 10:00 UTC (2h ago) · added · +49 151 •••• {i:04} by +49 151 •••• 1111"
            ));
        }
        reply.table = Some(Table {
            headers: vec!["Name".into()],
            rows: (0..5000).map(|i| vec![format!("group {i}")]).collect(),
        });
        for i in 0..15 {
            reply = reply.footer(format!("note {i}"));
        }
        let m = message(&reply);
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{}", blocks.len());
        for t in texts(&m) {
            assert!(t.chars().count() <= MAX_SECTION, "{}", t.chars().count());
        }
        let all = texts(&m).join("\n");
        assert!(all.contains("… and ") && all.contains(" more"), "cut marker");
        let shown = all.matches("· added ·").count();
        let more: usize = all
            .split("… and ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(shown + more, 20_000, "every line is shown or counted");
        let context = blocks.iter().find(|b| b["type"] == "context").unwrap();
        assert_eq!(context["elements"].as_array().unwrap().len(), 10);
        assert_eq!(m["response_type"], "in_channel");
    }

    #[test]
    fn buttons_carry_the_confirmation() {
        let mut reply = Reply::new(Status::Preview, Visibility::Ephemeral, "This adds 21 numbers");
        reply.buttons = vec![
            crate::core::reply::Button {
                action: ButtonAction::Apply,
                label: "Apply".into(),
                value: "c1".into(),
            },
            crate::core::reply::Button {
                action: ButtonAction::Cancel,
                label: "Cancel".into(),
                value: "c1".into(),
            },
        ];
        let m = message(&reply);
        let actions = m["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "actions")
            .unwrap();
        assert_eq!(actions["elements"][0]["action_id"], "apply");
        assert_eq!(actions["elements"][0]["value"], "c1");
        assert_eq!(actions["elements"][1]["style"], "danger");
        assert_eq!(m["response_type"], "ephemeral");
    }
}
