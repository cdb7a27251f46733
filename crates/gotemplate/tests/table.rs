//! Every case of cases/table.txt, whose expectations are Go 1.23's output.

mod common;

#[test]
fn table_cases_render_as_go_does() {
    common::helm_cases::check_table(&common::cases(), 150, common::render);
}

#[test]
fn every_prefix_of_every_case_fails_cleanly_or_renders() {
    // Truncated templates hit every lexer and parser error path; none may panic.
    for (mode, case) in common::cases() {
        for (end, _) in case.template.char_indices().skip(1) {
            let truncated = common::Case {
                name: case.name.clone(),
                values: case.values.clone(),
                template: case.template[..end].to_string(),
                expected: Ok(String::new()),
            };
            let _ = common::render(mode, &truncated);
        }
    }
}
