//! cases/sprig.txt for the table, interop and no-panic tests, rendered with sprig's functions through
//! the harness weaver-test-support's `cases`.

use gotemplate::Templates;

pub use weaver_test_support::cases as helm_cases;

pub use helm_cases::{Case, Mode};

pub const TABLE: &str = include_str!("../cases/sprig.txt");

/// The table's cases, with their modes: all helm's.
pub fn table() -> Vec<(Mode, Case)> {
    let table = helm_cases::parse(TABLE);
    assert!(table.iter().all(|(mode, _)| *mode == Mode::Helm), "sprig's cases render as helm does");
    table
}

/// The table's cases.
pub fn cases() -> Vec<Case> {
    table().into_iter().map(|(_, case)| case).collect()
}

/// A set configured as helm's engine configures one, with sprig's functions.
pub fn templates() -> Templates {
    helm_cases::templates_with(Mode::Helm, sprig::register)
}

/// Renders a case as helm renders a chart file holding the case's template, in a copy of one set
/// of [`templates`]: registering sprig's functions for every render of the no-panic tests' many
/// truncated templates was most of their time.
pub fn render(case: &Case) -> Result<String, String> {
    thread_local! { static SET: Templates = templates(); }
    helm_cases::render_in(SET.with(Templates::clone), Mode::Helm, case, &mut ())
}
