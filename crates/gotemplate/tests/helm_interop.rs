//! Renders the helm-mode cases of cases/table.txt with a real `helm template` (v3.17.1: $WEAVER_HELM,
//! else `helm` on PATH) and compares with the table, which this crate's table test checks. Skipped,
//! saying so, when helm is missing, unless WEAVER_REQUIRE_INTEROP=1; see weaver-test-support's `cases`.

use crate::common;

#[test]
fn helm_renders_the_helm_cases_as_the_table_says() {
    common::helm_cases::check_with_helm("gotemplate", &common::cases());
}
