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
