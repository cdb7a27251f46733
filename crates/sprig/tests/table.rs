//! Every case of cases/sprig.txt, whose expectations are helm 3.17.1's output.

mod common;

#[test]
fn table_cases_render_as_helm_does() {
    let cases = common::cases();
    let mut failures = Vec::new();
    for case in &cases {
        let got = common::render(case);
        if got != case.expected {
            failures.push(format!("case {:?}\n  want: {:?}\n  got:  {:?}", case.name, case.expected, got));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(cases.len() >= 300, "the table has {} cases", cases.len());
}

#[test]
fn case_names_are_unique() {
    let cases = common::cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate case names");
}
