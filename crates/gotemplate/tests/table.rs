//! Every case of cases/table.txt, whose expectations are Go 1.23's output.

use crate::common;

#[test]
fn table_cases_render_as_go_does() {
    common::helm_cases::check_table(&common::cases(), 150, common::render);
}

#[test]
fn every_prefix_of_every_case_fails_cleanly_or_renders() {
    // Truncated templates hit every lexer and parser error path; none may panic.
    for (mode, case) in common::cases() {
        for truncated in case.prefixes() {
            let _ = common::render(mode, &truncated);
        }
    }
}
