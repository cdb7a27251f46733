//! Every case of cases/sprig.txt, whose expectations are helm 3.17.1's output.

use crate::common;

#[test]
fn table_cases_render_as_helm_does() {
    common::helm_cases::check_table(&common::table(), 300, |_, case| common::render(case));
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
