//! Every case of cases/table.txt, whose expectations are Go 1.23's output.

mod common;

#[test]
fn table_cases_render_as_go_does() {
    let cases = common::cases();
    assert!(cases.len() >= 150, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let got = common::render(case);
        if got != case.expected {
            failures.push(format!("case {:?}\n  want: {:?}\n  got:  {:?}", case.name, case.expected, got));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn every_prefix_of_every_case_fails_cleanly_or_renders() {
    // Truncated templates hit every lexer and parser error path; none may panic.
    for case in common::cases() {
        for (end, _) in case.template.char_indices().skip(1) {
            let truncated = common::Case {
                name: case.name.clone(),
                mode: case.mode,
                values: case.values.clone(),
                template: case.template[..end].to_string(),
                expected: Ok(String::new()),
            };
            let _ = common::render(&truncated);
        }
    }
}
