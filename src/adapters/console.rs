//! The console frontend (`waops exec`): plain-text rendering and exit codes.

use crate::core::reply::{Reply, Status};
use crate::core::Progress;

/// "Adding… 120/500" on stderr while a bulk add runs, when stderr is a terminal.
pub struct ProgressBar(indicatif::ProgressBar);

impl ProgressBar {
    /// A bar on stderr, or `None` when stderr is not a terminal (pipes, CI).
    pub fn on_terminal() -> Option<Self> {
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            return None;
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("Adding… {pos}/{len} {wide_bar}")
                .expect("static template is valid"),
        );
        Some(ProgressBar(bar))
    }

    /// Removes the bar before the reply is printed.
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for ProgressBar {
    fn update(&self, done: usize, total: usize) {
        self.0.set_length(total as u64);
        self.0.set_position(done as u64);
    }
}

/// Exit code for a reply: 0 ok, 1 user error (or an unconfirmed preview), 2 internal.
pub fn exit_code(reply: &Reply) -> i32 {
    match reply.status {
        Status::Ok => 0,
        Status::Preview | Status::UserError => 1,
        Status::Internal => 2,
    }
}

/// Renders a reply as plain text; `color` adds ANSI bold to the title.
pub use waops_core::reply::plain as render;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::reply::{Button, ButtonAction, Rich, Table, Visibility};

    #[test]
    fn renders_every_part() {
        let mut reply = Reply::new(
            Status::Ok,
            Visibility::Channel,
            Rich::new().text("Added to ").strong("Sales"),
        )
        .line(Rich::new().code("+4915112345678").text(" added"))
        .field("Id", "120363041234567890@g.us")
        .footer("done");
        reply.table = Some(Table {
            headers: vec!["Name".into(), "Id".into()],
            rows: vec![vec!["A\x1b[2J".into(), "1".into()]],
        });
        reply.buttons.push(Button {
            action: ButtonAction::Apply,
            label: "Apply".into(),
            value: "x".into(),
        });
        assert_eq!(
            render(&reply, false),
            "Added to Sales\n  `+4915112345678` added\n  Id  120363041234567890@g.us\n  Name   Id\n  A?[2J  1\n  [Apply]\ndone\n"
        );
        assert_eq!(exit_code(&reply), 0);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(&Reply::user_error("x")), 1);
        assert_eq!(exit_code(&Reply::new(Status::Preview, Visibility::Ephemeral, "x")), 1);
        assert_eq!(exit_code(&Reply::new(Status::Internal, Visibility::Ephemeral, "x")), 2);
    }
}
