//! Renders every case of cases/sprig.txt with a real `helm template` (v3.17.1: $WEAVER_HELM, else
//! `helm` on PATH) and compares with the table. Skipped, saying so, when helm is missing, unless
//! WEAVER_REQUIRE_INTEROP=1; see weaver-test-support's `cases`.

use crate::common;

#[test]
fn helm_renders_every_case_as_the_table_says() {
    common::helm_cases::check_with_helm("sprig", &common::table());
}
