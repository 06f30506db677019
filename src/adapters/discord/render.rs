//! Discord rendering of a `Reply`: one embed within Discord's limits (title 256,
//! description 4096, 25 fields, footer 2048, 6000 characters per message),
//! markdown and mentions escaped, `allowed_mentions` empty.

use serde_json::{json, Value};

use crate::core::reply::{cut, ButtonAction, Reply, Rich, Span, Status, Table, Visibility};

/// Embed description limit.
pub const MAX_DESCRIPTION: usize = 4096;
/// Characters in all embeds of a message.
pub const MAX_TOTAL: usize = 6000;
/// Fields per embed.
pub const MAX_FIELDS: usize = 25;
/// The ephemeral message flag.
pub const EPHEMERAL: u64 = 64;

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

/// The message body (for an interaction response, an edit or a follow-up).
pub fn message(reply: &Reply) -> Value {
    let title = cut(&plain(&reply.title), 256);
    let mut total = title.chars().count();
    let fields: Vec<Value> = reply
        .fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(name, value)| json!({"name": cut(name, 256), "value": cut(&markdown(value), 1024), "inline": true}))
        .collect();
    total += reply
        .fields
        .iter()
        .take(MAX_FIELDS)
        .map(|(n, v)| n.chars().count().min(256) + markdown(v).chars().count().min(1024))
        .sum::<usize>();
    let footer = cut(&reply.footer.iter().map(plain).collect::<Vec<_>>().join("\n"), 2048);
    total += footer.chars().count();
    let room = MAX_TOTAL.saturating_sub(total).min(MAX_DESCRIPTION);
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
    let mut embed = json!({"title": title, "color": color});
    if !description.is_empty() {
        embed["description"] = Value::String(description);
    }
    if !fields.is_empty() {
        embed["fields"] = Value::Array(fields);
    }
    if !footer.is_empty() {
        embed["footer"] = json!({"text": footer});
    }
    let mut body = json!({"content": "", "embeds": [embed], "allowed_mentions": {"parse": []}});
    if !reply.buttons.is_empty() {
        let buttons: Vec<Value> = reply
            .buttons
            .iter()
            .map(|b| {
                let (prefix, style) = match b.action {
                    ButtonAction::Apply => ("apply", 3),
                    ButtonAction::Cancel => ("cancel", 4),
                };
                json!({"type": 2, "style": style, "label": b.label, "custom_id": format!("{prefix}:{}", b.value)})
            })
            .collect();
        body["components"] = json!([{"type": 1, "components": buttons}]);
    } else {
        body["components"] = json!([]);
    }
    if reply.visibility == Visibility::Ephemeral {
        body["flags"] = json!(EPHEMERAL);
    }
    body
}

/// Most messages one long result is spread over (the answer and its follow-ups).
pub const MAX_MESSAGES: usize = 5;
/// Description budget per continuation message.
const PAGE: usize = 3900;

/// The reply as one message, or, when its lines and table do not fit one embed,
/// as up to `MAX_MESSAGES` messages (the first with title and fields, the last
/// with the footer); what does not fit even then ends in "… and N more".
pub fn messages(reply: &Reply) -> Vec<Value> {
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
            let mut body = message(&part);
            let mut description = page.join("\n");
            if i + 1 == count {
                if left > 0 {
                    description.push_str(&format!("\n… and {left} more"));
                }
                let footer = cut(&reply.footer.iter().map(plain).collect::<Vec<_>>().join("\n"), 2048);
                if !footer.is_empty() {
                    body["embeds"][0]["footer"] = json!({"text": footer});
                }
            }
            body["embeds"][0]["description"] = Value::String(description);
            body
        })
        .collect()
}

/// Characters Discord counts toward the 6000 limit in a message's embeds.
pub fn embed_chars(body: &Value) -> usize {
    let mut n = 0;
    for e in body["embeds"].as_array().into_iter().flatten() {
        for key in ["title", "description"] {
            n += e[key].as_str().map_or(0, |s| s.chars().count());
        }
        n += e["footer"]["text"].as_str().map_or(0, |s| s.chars().count());
        for f in e["fields"].as_array().into_iter().flatten() {
            n += f["name"].as_str().map_or(0, |s| s.chars().count())
                + f["value"].as_str().map_or(0, |s| s.chars().count());
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_and_mentions() {
        let reply = Reply::info("t").line(Rich::new().text("@everyone <@123> **x** [a](https://evil.example) `c`"));
        let body = message(&reply);
        let d = body["embeds"][0]["description"].as_str().unwrap();
        assert_eq!(
            d,
            "@\u{200B}everyone \\<@\u{200B}123\\> \\*\\*x\\*\\* \\[a\\]\\(https\\://evil.example\\) \\`c\\`"
        );
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
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
            assert!(p["embeds"][0]["description"].as_str().unwrap().chars().count() <= MAX_DESCRIPTION);
            assert!(embed_chars(p) <= MAX_TOTAL);
        }
        let shown: usize = pages
            .iter()
            .map(|p| {
                p["embeds"][0]["description"]
                    .as_str()
                    .unwrap()
                    .matches("· added ·")
                    .count()
            })
            .sum();
        assert_eq!(shown, 250, "all 250 lines fit in the follow-ups");
        assert_eq!(pages.last().unwrap()["embeds"][0]["footer"]["text"], "Source: x");
        assert_eq!(pages[1]["embeds"][0]["title"], "History (continued)");

        let mut huge = Reply::new(Status::Ok, Visibility::Channel, "History");
        for i in 0..5000 {
            huge = huge.line(format!("line {i} · added · +49 151 •••• 1111 by +49 151 •••• 2222"));
        }
        let pages = messages(&huge);
        assert_eq!(pages.len(), MAX_MESSAGES);
        let last = pages.last().unwrap()["embeds"][0]["description"].as_str().unwrap();
        let more: usize = last
            .rsplit("… and ")
            .next()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let shown: usize = pages
            .iter()
            .map(|p| {
                p["embeds"][0]["description"]
                    .as_str()
                    .unwrap()
                    .matches("· added ·")
                    .count()
            })
            .sum();
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
        let body = message(&reply);
        let e = &body["embeds"][0];
        assert_eq!(e["title"].as_str().unwrap().chars().count(), 256);
        assert!(e["description"].as_str().unwrap().chars().count() <= MAX_DESCRIPTION);
        assert_eq!(e["fields"].as_array().unwrap().len(), MAX_FIELDS);
        assert!(embed_chars(&body) <= MAX_TOTAL, "{}", embed_chars(&body));
        assert!(e["description"].as_str().unwrap().contains("… and "));
        assert!(body.get("flags").is_none(), "channel results are not ephemeral");
    }
}
