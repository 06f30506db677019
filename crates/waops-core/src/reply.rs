//! The platform-neutral result of a command. Frontends render it; user-controlled
//! text stays in `Span::Text` so every renderer can escape it for its platform.

/// One piece of formatted text.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Span {
    /// Plain text, possibly typed by a user or sent by a provider: renderers escape it.
    Text(String),
    /// Emphasised text (a group name).
    Strong(String),
    /// Literal text (a command, an id).
    Code(String),
    /// A link.
    Link(String),
}

/// A line of formatted text.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rich(pub Vec<Span>);

impl Rich {
    /// An empty line to build on.
    pub fn new() -> Self {
        Rich(Vec::new())
    }
    /// Appends plain text.
    pub fn text(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Text(s.into()));
        self
    }
    /// Appends emphasised text.
    pub fn strong(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Strong(s.into()));
        self
    }
    /// Appends literal text.
    pub fn code(mut self, s: impl Into<String>) -> Self {
        self.0.push(Span::Code(s.into()));
        self
    }
    /// Appends a link.
    pub fn link(mut self, url: impl Into<String>) -> Self {
        self.0.push(Span::Link(url.into()));
        self
    }
    /// Appends another line's pieces.
    pub fn append(mut self, other: Rich) -> Self {
        self.0.extend(other.0);
        self
    }
    /// The text without formatting.
    pub fn plain(&self) -> String {
        self.0
            .iter()
            .map(|s| match s {
                Span::Text(t) | Span::Strong(t) | Span::Code(t) | Span::Link(t) => t.as_str(),
            })
            .collect()
    }
}

impl From<&str> for Rich {
    fn from(s: &str) -> Self {
        Rich::new().text(s)
    }
}

impl From<String> for Rich {
    fn from(s: String) -> Self {
        Rich::new().text(s)
    }
}

/// How a command ended, which decides exit codes and styling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// Done.
    Ok,
    /// Nothing done yet: a preview waiting for confirmation.
    Preview,
    /// The user can fix it: bad input, refused, or the provider said no.
    UserError,
    /// Our fault; details are in the log under the request id.
    Internal,
}

/// Who sees the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Visibility {
    /// Only the caller.
    Ephemeral,
    /// Everybody in the channel.
    Channel,
}

/// A button on a preview.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Button {
    /// What it does.
    pub action: ButtonAction,
    /// The text on it.
    pub label: String,
    /// The confirmation id it refers to.
    pub value: String,
}

/// Button kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ButtonAction {
    /// Run the previewed command.
    Apply,
    /// Drop it.
    Cancel,
    /// Ask a second person to approve it (two-person rule).
    RequestApproval,
    /// Approve someone else's request.
    Approve,
    /// Reject someone else's request.
    Reject,
}

impl ButtonAction {
    /// The id both chat platforms carry for it.
    pub fn id(self) -> &'static str {
        match self {
            ButtonAction::Apply => "apply",
            ButtonAction::Cancel => "cancel",
            ButtonAction::RequestApproval => "request_approval",
            ButtonAction::Approve => "approve",
            ButtonAction::Reject => "reject",
        }
    }

    /// The action a button id names.
    pub fn from_id(id: &str) -> Option<ButtonAction> {
        [
            ButtonAction::Apply,
            ButtonAction::Cancel,
            ButtonAction::RequestApproval,
            ButtonAction::Approve,
            ButtonAction::Reject,
        ]
        .into_iter()
        .find(|a| a.id() == id)
    }
}

/// A simple table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    /// Column titles.
    pub headers: Vec<String>,
    /// Rows of cells; user-controlled text, escaped by renderers.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The header and rows as lines, columns padded to equal width, two spaces apart.
    pub fn aligned_lines(&self) -> Vec<String> {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        std::iter::once(&self.headers)
            .chain(self.rows.iter())
            .map(|cells| {
                let padded: Vec<String> = cells
                    .iter()
                    .enumerate()
                    .take(columns)
                    .map(|(i, c)| format!("{:<w$}", c, w = widths[i]))
                    .collect();
                padded.join("  ").trim_end().to_string()
            })
            .collect()
    }
}

/// Cuts text to at most `max` characters, ending in `…` when it was cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A command's result.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    /// How it ended.
    pub status: Status,
    /// Who sees it.
    pub visibility: Visibility,
    /// One line saying what happened.
    pub title: Rich,
    /// Body lines.
    pub lines: Vec<Rich>,
    /// Labelled values.
    pub fields: Vec<(String, Rich)>,
    /// An optional table.
    pub table: Option<Table>,
    /// Buttons (previews).
    pub buttons: Vec<Button>,
    /// Closing hints ("use --limit", "usage: ...").
    pub footer: Vec<Rich>,
}

impl Reply {
    /// A reply with a title and nothing else.
    pub fn new(status: Status, visibility: Visibility, title: impl Into<Rich>) -> Self {
        Reply {
            status,
            visibility,
            title: title.into(),
            lines: Vec::new(),
            fields: Vec::new(),
            table: None,
            buttons: Vec::new(),
            footer: Vec::new(),
        }
    }
    /// A successful, ephemeral reply.
    pub fn info(title: impl Into<Rich>) -> Self {
        Reply::new(Status::Ok, Visibility::Ephemeral, title)
    }
    /// A user error (always ephemeral).
    pub fn user_error(title: impl Into<Rich>) -> Self {
        Reply::new(Status::UserError, Visibility::Ephemeral, title)
    }
    /// Adds a body line.
    pub fn line(mut self, line: impl Into<Rich>) -> Self {
        self.lines.push(line.into());
        self
    }
    /// Adds a labelled value.
    pub fn field(mut self, name: &str, value: impl Into<Rich>) -> Self {
        self.fields.push((name.to_string(), value.into()));
        self
    }
    /// Adds a closing hint.
    pub fn footer(mut self, line: impl Into<Rich>) -> Self {
        self.footer.push(line.into());
        self
    }
    /// Sets the visibility.
    pub fn visible(mut self, visibility: Visibility) -> Self {
        self.visibility = visibility;
        self
    }
    /// The whole reply as plain text, for logs and tests.
    pub fn plain(&self) -> String {
        plain(self, false)
    }
}
/// Renders a reply as plain text; `color` adds ANSI bold to the title.
pub fn plain(reply: &Reply, color: bool) -> String {
    let mut out = String::new();
    let title = rich(&reply.title.0);
    if color {
        out.push_str(&format!("\x1b[1m{title}\x1b[0m\n"));
    } else {
        out.push_str(&title);
        out.push('\n');
    }
    for line in &reply.lines {
        out.push_str("  ");
        out.push_str(&rich(&line.0));
        out.push('\n');
    }
    if !reply.fields.is_empty() {
        let width = reply.fields.iter().map(|(n, _)| n.chars().count()).max().unwrap_or(0);
        for (name, value) in &reply.fields {
            out.push_str(&format!("  {name:<width$}  {}\n", rich(&value.0)));
        }
    }
    if let Some(table) = &reply.table {
        out.push_str(&render_table(table));
    }
    if !reply.buttons.is_empty() {
        let labels: Vec<_> = reply.buttons.iter().map(|b| format!("[{}]", b.label)).collect();
        out.push_str(&format!("  {}\n", labels.join(" ")));
    }
    for line in &reply.footer {
        out.push_str(&rich(&line.0));
        out.push('\n');
    }
    out
}

fn rich(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) | Span::Strong(t) | Span::Link(t) => sanitize(t),
            Span::Code(t) => format!("`{}`", sanitize(t)),
        })
        .collect()
}

/// Terminal control characters from user or provider text could rewrite the
/// operator's screen; show them as `?` instead.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() && c != '\n' { '?' } else { c })
        .collect()
}

fn render_table(table: &Table) -> String {
    table
        .aligned_lines()
        .iter()
        .map(|line| format!("  {}\n", sanitize(line)))
        .collect()
}
