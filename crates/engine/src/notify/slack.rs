//! Slack's incoming-webhook message: `text` (what notifications and clients without blocks
//! show) and Block Kit `blocks`: the summary, what went wrong or drifted, and where.

use serde_json::{Value, json};

use super::payload::{Message, Severity};

/// Slack's limit for a section's text is 3000 characters.
const SECTION_LIMIT: usize = 2900;

pub(super) fn body(message: &Message) -> Vec<u8> {
    let icon = match message.severity {
        Severity::Info => ":white_check_mark:",
        Severity::Warning => ":warning:",
        Severity::Error => ":x:",
    };
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{icon} *{}*", escape(&message.summary))}}),
    ];
    if !message.lines.is_empty() {
        let mut text = String::new();
        for line in &message.lines {
            let line = escape(line);
            if text.len() + line.len() + 1 > SECTION_LIMIT {
                text.push_str("…\n");
                break;
            }
            text.push_str(&line);
            text.push('\n');
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{text}```")}}));
    }
    let mut context = format!("weaver · {} · context `{}`", message.event.as_str(), escape(&message.context));
    if let Some(commit) = &message.commit {
        context.push_str(&format!(" · commit `{}`", &commit[..commit.len().min(12)]));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    let body: Value = json!({"text": escape(&message.summary), "blocks": blocks});
    serde_json::to_vec(&body).expect("a message is JSON")
}

/// Slack reads `&`, `<` and `>` as markup (`<!channel>` mentions everyone).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
