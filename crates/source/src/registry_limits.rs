//! Bounds on what registries answer (see docs/src/guides/security.md, Registries): a leaf the
//! registry client, the image checks and chart resolution all read.

use std::time::Duration;

use weaver_core::error::{Error, Result};

/// The longest `WEAVER_REGISTRY_CHECK_SECONDS`: a day (a deadline must be a time the clock can
/// hold, and a check longer than a day is a mistake).
const LONGEST_CHECK: u64 = 86_400;

/// Bounds on tag lists, as registries answer them page by page: a repository's (or, for
/// [`crate::images::Check`], all a check reads together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagLimits {
    pub tags: usize,
    pub pages: usize,
    /// Of the pages' bodies.
    pub bytes: u64,
}

impl TagLimits {
    /// A repository's: a million tags of 100 bytes (103 MB, as large as lists seen in the wild
    /// come) fit, with room; 10,000 pages are that million at 100 a page (Docker Hub's).
    pub const REPOSITORY: TagLimits = TagLimits { tags: 2_000_000, pages: 10_000, bytes: 128 << 20 };
}

/// Bounds on what registries answer, from the `WEAVER_REGISTRY_*` variables (see
/// docs/src/guides/security.md, Registries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    /// One repository's tag list.
    pub repository: TagLimits,
    /// The tag lists one check reads, together.
    pub check: TagLimits,
    /// The longest one check takes, its pages, retries and waits included.
    pub check_time: Duration,
}

impl Default for RegistryLimits {
    fn default() -> RegistryLimits {
        RegistryLimits {
            repository: TagLimits::REPOSITORY,
            check: TagLimits { tags: 4_000_000, pages: 20_000, bytes: 256 << 20 },
            check_time: Duration::from_secs(300),
        }
    }
}

impl RegistryLimits {
    /// The limits of this process's environment (`WEAVER_REGISTRY_*`): the controller's own
    /// settings, which its tenants cannot change. Its start (`weaver operator run`) refuses
    /// values that do not read; past it, one that does not read is the default.
    pub fn of_process() -> RegistryLimits {
        RegistryLimits::from_variables(&|name| std::env::var(name).ok()).unwrap_or_default()
    }

    /// The defaults, with those of the variables `var` gives in their place.
    pub fn from_variables(var: &dyn Fn(&str) -> Option<String>) -> Result<RegistryLimits> {
        let mut limits = RegistryLimits::default();
        let number = |name: &str, default: u64| -> Result<u64> {
            let Some(text) = var(name) else { return Ok(default) };
            match text.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(Error::new(format!("{name}={} is not a whole number above 0", text.escape_debug()))
                    .with_help(format!("{name} bounds what registries answer; its default is {default} (see docs/src/guides/security.md, Registries)"))),
            }
        };
        let count = |name: &str, default: usize| number(name, default as u64).map(|n| n as usize);
        for (prefix, bounds) in
            [("WEAVER_REGISTRY", &mut limits.repository), ("WEAVER_REGISTRY_CHECK", &mut limits.check)]
        {
            bounds.tags = count(&format!("{prefix}_MAX_TAGS"), bounds.tags)?;
            bounds.pages = count(&format!("{prefix}_MAX_PAGES"), bounds.pages)?;
            bounds.bytes = number(&format!("{prefix}_MAX_BYTES"), bounds.bytes)?;
        }
        let name = "WEAVER_REGISTRY_CHECK_SECONDS";
        let seconds = number(name, limits.check_time.as_secs())?;
        if seconds > LONGEST_CHECK {
            return Err(Error::new(format!("{name}={seconds} is more than {LONGEST_CHECK} (a day)")).with_help(format!(
                "{name} bounds the time one check of registries takes; its default is {} (see docs/src/guides/security.md, Registries)",
                limits.check_time.as_secs()
            )));
        }
        limits.check_time = Duration::from_secs(seconds);
        Ok(limits)
    }
}
