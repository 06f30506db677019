//! Discord rendering of a `Reply`: one embed within Discord's limits (title 256,
//! description 4096, 25 fields, footer 2048, 6000 characters per message),
//! markdown and mentions escaped, `allowed_mentions` empty.

use serenity::all::{
    ButtonStyle, CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed, CreateEmbedFooter,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, CreateMessage, EditInteractionResponse,
};

use crate::core::reply::{cut, ButtonAction, Reply, Rich, Span, Status, Table, Visibility};

/// Embed description limit.
pub const MAX_DESCRIPTION: usize = 4096;
/// Characters in all embeds of a message.
pub const MAX_TOTAL: usize = 6000;
/// Fields per embed.
pub const MAX_FIELDS: usize = 25;

/// Escapes Discord markdown and defuses mentions in user- or provider-controlled text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '<' | '#' | '[' | ']' | '(' | ')' | ':' => {
                out.push('\\');
                out.push(c);
            }
            // "@everyone" and "@here" stay text even where mentions are parsed.
            '@' => out.push_str("@\u{200B}"),
            c if c.is_control() && c != '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

/// One line of spans as Discord markdown.
pub fn markdown(line: &Rich) -> String {
    line.0
        .iter()
        .map(|span| match span {
            Span::Text(t) => escape(t),
            Span::Strong(t) => format!("**{}**", escape(t)),
            Span::Code(t) => code(t),
            Span::Link(url) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => u.to_string(),
                _ => escape(url),
            },
        })
        .collect()
}

fn plain(line: &Rich) -> String {
    line.plain()
}

fn table_lines(table: &Table) -> Vec<String> {
    // Code blocks show text literally; defuse `@` anyway so a copy elsewhere cannot ping.
    table
        .aligned_lines()
        .iter()
        .map(|line| line.replace('`', "'").replace('@', "@\u{200B}"))
        .collect()
}

/// Joins lines into at most `budget` characters; the rest become "… and N more".
fn fit(lines: &[String], budget: usize, block: bool) -> String {
    let fence = if block { 8 } else { 0 };
    let mut out = String::new();
    let mut used = 0;
    let reserve = 24;
    for line in lines {
        let extra = line.chars().count() + usize::from(!out.is_empty());
        if out.chars().count() + extra + fence + reserve > budget {
            break;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line);
        used += 1;
    }
    if block && !out.is_empty() {
        out = format!("```\n{out}\n```");
    }
    if used < lines.len() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("… and {} more", lines.len() - used));
    }
    out
}

/// One Discord message as waops lays it out: one embed, and Apply / Cancel
/// buttons when the reply has them. The serenity builders for each way of
/// sending it come from here (`response`, `edit`, `follow_up`, `channel`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Embed title.
    pub title: String,
    /// Embed description (lines, then the table in a code block).
    pub description: String,
    /// Embed colour by status.
    pub color: u32,
    /// Inline fields (name, value).
    pub fields: Vec<(String, String)>,
    /// Embed footer.
    pub footer: String,
    /// Buttons: (custom id, label, style).
    pub buttons: Vec<(String, String, ButtonStyle)>,
    /// For the caller only.
    pub ephemeral: bool,
}

impl Message {
    /// The embed.
    pub fn embed(&self) -> CreateEmbed {
        let mut embed = CreateEmbed::new().title(&self.title).colour(self.color);
        if !self.description.is_empty() {
            embed = embed.description(&self.description);
        }
        for (name, value) in &self.fields {
            embed = embed.field(name, value, true);
        }
        if !self.footer.is_empty() {
            embed = embed.footer(CreateEmbedFooter::new(&self.footer));
        }
        embed
    }

    /// The buttons in one row; none when there are none.
    pub fn components(&self) -> Vec<CreateActionRow> {
        if self.buttons.is_empty() {
            return Vec::new();
        }
        let buttons = self
            .buttons
            .iter()
            .map(|(id, label, style)| CreateButton::new(id).label(label).style(*style))
            .collect();
        vec![CreateActionRow::Buttons(buttons)]
    }

    /// An interaction response's message (answered inline).
    pub fn response(&self) -> CreateInteractionResponseMessage {
        let message = CreateInteractionResponseMessage::new()
            .content("")
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(CreateAllowedMentions::new());
        // No flags at all for a channel message, as Discord's own examples.
        if self.ephemeral {
            message.ephemeral(true)
        } else {
            message
        }
    }

    /// An edit of the interaction's original response.
    pub fn edit(&self) -> EditInteractionResponse {
        EditInteractionResponse::new()
            .content("")
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(CreateAllowedMentions::new())
    }

    /// A follow-up message of the interaction.
    pub fn follow_up(&self) -> CreateInteractionResponseFollowup {
        let message = CreateInteractionResponseFollowup::new()
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(CreateAllowedMentions::new());
        if self.ephemeral {
            message.ephemeral(true)
        } else {
            message
        }
    }

    /// A channel message (digests), with no flags: a channel message cannot be ephemeral.
    pub fn channel(&self) -> CreateMessage {
        CreateMessage::new()
            .embed(self.embed())
            .components(self.components())
            .allowed_mentions(CreateAllowedMentions::new())
    }

    /// Characters Discord counts toward the 6000 limit in a message's embeds.
    pub fn embed_chars(&self) -> usize {
        let count = |s: &str| s.chars().count();
        count(&self.title)
            + count(&self.description)
            + count(&self.footer)
            + self.fields.iter().map(|(n, v)| count(n) + count(v)).sum::<usize>()
    }
}

/// The reply as one message, cut to Discord's limits.
pub fn message(reply: &Reply) -> Message {
    let title = cut(&plain(&reply.title), 256);
    let fields: Vec<(String, String)> = reply
        .fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(name, value)| (cut(name, 256), cut(&markdown(value), 1024)))
        .collect();
    let footer = cut(&reply.footer.iter().map(plain).collect::<Vec<_>>().join("\n"), 2048);
    let used = title.chars().count()
        + footer.chars().count()
        + fields
            .iter()
            .map(|(n, v)| n.chars().count() + v.chars().count())
            .sum::<usize>();
    let room = MAX_TOTAL.saturating_sub(used).min(MAX_DESCRIPTION);
    let lines: Vec<String> = reply.lines.iter().map(markdown).collect();
    let table = reply.table.as_ref().map(table_lines).unwrap_or_default();
    let description = match (lines.is_empty(), table.is_empty()) {
        (false, true) => fit(&lines, room, false),
        (true, false) => fit(&table, room, true),
        (true, true) => String::new(),
        (false, false) => {
            let first = fit(&lines, room / 2, false);
            let rest = room.saturating_sub(first.chars().count() + 1);
            format!("{first}\n{}", fit(&table, rest, true))
        }
    };
    let color = match reply.status {
        Status::Ok => 0x2e7d32,
        Status::Preview => 0xf9a825,
        Status::UserError => 0xc62828,
        Status::Internal => 0x6d4c41,
    };
    let buttons = reply
        .buttons
        .iter()
        .map(|b| {
            let style = match b.action {
                ButtonAction::Apply | ButtonAction::RequestApproval | ButtonAction::Approve => ButtonStyle::Success,
                ButtonAction::Cancel | ButtonAction::Reject => ButtonStyle::Danger,
            };
            let prefix = b.action.id();
            (format!("{prefix}:{}", b.value), b.label.clone(), style)
        })
        .collect();
    Message {
        title,
        description,
        color,
        fields,
        footer,
        buttons,
        ephemeral: reply.visibility == Visibility::Ephemeral,
    }
}

/// Most messages one long result is spread over (the answer and its follow-ups).
pub const MAX_MESSAGES: usize = 5;
/// Description budget per continuation message.
const PAGE: usize = 3900;

/// The reply as one message, or, when its lines and table do not fit one embed,
/// as up to `MAX_MESSAGES` messages (the first with title and fields, the last
/// with the footer); what does not fit even then ends in "… and N more".
pub fn messages(reply: &Reply) -> Vec<Message> {
    let mut pieces: Vec<String> = reply.lines.iter().map(markdown).collect();
    if let Some(table) = &reply.table {
        let rows = table_lines(table);
        for chunk in rows.chunks(40) {
            pieces.push(format!("```\n{}\n```", chunk.join("\n")));
        }
    }
    let total: usize = pieces.iter().map(|p| p.chars().count() + 1).sum();
    if total <= PAGE {
        return vec![message(reply)];
    }
    let mut pages: Vec<Vec<String>> = vec![Vec::new()];
    let mut size = 0;
    let mut placed = 0;
    for piece in &pieces {
        let piece = cut(piece, PAGE);
        let len = piece.chars().count() + 1;
        if size + len > PAGE {
            if pages.len() == MAX_MESSAGES {
                break;
            }
            pages.push(Vec::new());
            size = 0;
        }
        size += len;
        pages.last_mut().expect("never empty").push(piece);
        placed += 1;
    }
    let left = pieces.len() - placed;
    let count = pages.len();
    pages
        .into_iter()
        .enumerate()
        .map(|(i, page)| {
            let mut part = Reply::new(
                reply.status,
                reply.visibility,
                if i == 0 {
                    reply.title.clone()
                } else {
                    Rich::from(format!("{} (continued)", plain(&reply.title)))
                },
            );
            if i == 0 {
                part.fields = reply.fields.clone();
                part.buttons = reply.buttons.clone();
            }
            let mut message = message(&part);
            message.description = page.join("\n");
            if i + 1 == count {
                if left > 0 {
                    message.description.push_str(&format!("\n… and {left} more"));
                }
                message.footer = cut(&reply.footer.iter().map(plain).collect::<Vec<_>>().join("\n"), 2048);
            }
            message
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_mentions() {
        let reply = Reply::info("t").line(Rich::new().text("@everyone <@123> **x** [a](https://evil.example) `c`"));
        let message = message(&reply);
        assert_eq!(
            message.description,
            "@\u{200B}everyone \\<@\u{200B}123\\> \\*\\*x\\*\\* \\[a\\]\\(https\\://evil.example\\) \\`c\\`"
        );
        let body = serde_json::to_value(message.response()).unwrap();
        assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
        assert_eq!(body["flags"], 64);
    }

    #[test]
    fn long_results_continue_in_follow_ups() {
        let mut reply = Reply::new(Status::Ok, Visibility::Channel, "History").footer("Source: x");
        for i in 0..250 {
            reply = reply.line(format!("line {i:03} · added · +49 151 •••• 1111 by +49 151 •••• 2222"));
        }
        let pages = messages(&reply);
        assert!(pages.len() > 1 && pages.len() <= MAX_MESSAGES, "{}", pages.len());
        for p in &pages {
            assert!(p.description.chars().count() <= MAX_DESCRIPTION);
            assert!(p.embed_chars() <= MAX_TOTAL);
        }
        let shown: usize = pages.iter().map(|p| p.description.matches("· added ·").count()).sum();
        assert_eq!(shown, 250, "all 250 lines fit in the follow-ups");
        assert_eq!(pages.last().unwrap().footer, "Source: x");
        assert_eq!(pages[1].title, "History (continued)");

        let mut huge = Reply::new(Status::Ok, Visibility::Channel, "History");
        for i in 0..5000 {
            huge = huge.line(format!("line {i} · added · +49 151 •••• 1111 by +49 151 •••• 2222"));
        }
        let pages = messages(&huge);
        assert_eq!(pages.len(), MAX_MESSAGES);
        let last = &pages.last().unwrap().description;
        let more: usize = last
            .rsplit("… and ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let shown: usize = pages.iter().map(|p| p.description.matches("· added ·").count()).sum();
        assert_eq!(shown + more, 5000);
    }

    #[test]
    fn long_results_stay_within_limits() {
        let mut reply = Reply::new(Status::Ok, Visibility::Channel, "x".repeat(300));
        for i in 0..10_000 {
            reply = reply.line(format!("line {i} · added · +49 151 •••• 1111"));
        }
        for i in 0..40 {
            reply = reply.field(&format!("f{i}"), "v");
        }
        reply.table = Some(Table {
            headers: vec!["Name".into()],
            rows: (0..3000).map(|i| vec![format!("g{i}")]).collect(),
        });
        let message = message(&reply);
        assert_eq!(message.title.chars().count(), 256);
        assert!(message.description.chars().count() <= MAX_DESCRIPTION);
        assert_eq!(message.fields.len(), MAX_FIELDS);
        assert!(message.embed_chars() <= MAX_TOTAL, "{}", message.embed_chars());
        assert!(message.description.contains("… and "));
        let body = serde_json::to_value(message.response()).unwrap();
        assert!(body.get("flags").is_none(), "channel results are not ephemeral");
    }
}
