//! The tables `weaver sync` and `weaver previews` print alike: a preview's row, and a status
//! message cut to the terminal's width.

use std::io::IsTerminal;

use super::{Ui, table};
use weaver_api::environment_sync::{PreviewStatus, short};

/// A message shown on a terminal is cut to this many characters (`-o json` has it whole).
const MESSAGE_WIDTH: usize = 60;

/// The previews as a table, one row each: with a SYNC column when `rows` name their
/// EnvironmentSync (`weaver previews list`), without in `weaver sync get NAME`.
pub(super) fn previews_table<'a>(
    ui: &Ui,
    rows: impl IntoIterator<Item = (Option<String>, &'a PreviewStatus)>,
) -> String {
    let tty = std::io::stdout().is_terminal();
    let header = ["NAME", "BRANCH", "COMMIT", "STATE", "NAMESPACE", "URL", "MESSAGE"].map(String::from);
    let mut table_rows: Vec<Vec<String>> = Vec::new();
    let mut with_sync = false;
    for (sync, p) in rows {
        let mut row = vec![
            p.name.clone(),
            p.branch.clone(),
            short(&p.commit).to_string(),
            p.state.to_string(),
            p.namespace.clone(),
            p.url.clone().unwrap_or_else(|| "-".into()),
            p.message.as_deref().map_or_else(|| "-".to_string(), |m| truncate(m, tty)),
        ];
        if let Some(sync) = sync {
            with_sync = true;
            row.insert(0, sync);
        }
        table_rows.push(row);
    }
    let mut header = header.to_vec();
    if with_sync {
        header.insert(0, "SYNC".into());
    }
    table_rows.insert(0, header);
    table(ui, &table_rows)
}

pub(super) fn truncate(text: &str, tty: bool) -> String {
    if !tty || text.chars().count() <= MESSAGE_WIDTH {
        return text.to_string();
    }
    text.chars().take(MESSAGE_WIDTH - 1).chain(['…']).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_only_on_a_terminal() {
        let long = "x".repeat(100);
        assert_eq!(truncate(&long, false), long);
        assert_eq!(truncate(&long, true).chars().count(), MESSAGE_WIDTH);
        assert_eq!(truncate("short", true), "short");
    }
}
