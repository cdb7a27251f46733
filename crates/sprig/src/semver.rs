//! `semver` and `semverCompare`, on `weaver-semver` (Masterminds/semver v3.3.0's rules).

use std::sync::Arc;

use gotemplate::{FuncError, Function, Object, Templates, Type, Value};
use weaver_semver::{Constraints, Version};

use crate::str_arg;

pub(crate) fn register(t: &mut Templates) {
    t.add_function(
        "semver",
        Function::new(&[Type::String], |_, a| {
            let version = Version::parse(str_arg(a, 0)).map_err(FuncError::new)?;
            Ok(Value::Object(Arc::new(SemverVersion(version))))
        }),
    );
    t.add_function(
        "semverCompare",
        Function::new(&[Type::String, Type::String], |_, a| {
            let constraints = Constraints::parse(str_arg(a, 0)).map_err(FuncError::new)?;
            let version = Version::parse(str_arg(a, 1)).map_err(FuncError::new)?;
            Ok(Value::Bool(constraints.check(&version)))
        }),
    );
}

/// A `*semver.Version`, as templates see it.
#[derive(Debug)]
struct SemverVersion(Version);

impl Object for SemverVersion {
    fn type_name(&self) -> &str {
        "*semver.Version"
    }

    fn method(&self, name: &str) -> Option<Function> {
        let this = self.0.clone();
        let uint = |n: u64| Value::Int64(n as i64);
        Some(match name {
            "Major" => Function::new(&[], move |_, _| Ok(uint(this.major()))),
            "Minor" => Function::new(&[], move |_, _| Ok(uint(this.minor()))),
            "Patch" => Function::new(&[], move |_, _| Ok(uint(this.patch()))),
            "Prerelease" => Function::new(&[], move |_, _| Ok(Value::from(this.prerelease()))),
            "Metadata" => Function::new(&[], move |_, _| Ok(Value::from(this.metadata()))),
            "Original" => Function::new(&[], move |_, _| Ok(Value::from(this.original()))),
            "String" => Function::new(&[], move |_, _| Ok(Value::from(this.to_string()))),
            "Compare" | "LessThan" | "GreaterThan" | "Equal" | "LessThanEqual" | "GreaterThanEqual" => {
                let method = name.to_string();
                Function::new(&[Type::Any], move |_, a| {
                    let other = match &a[0] {
                        Value::Object(o) if o.type_name() == "*semver.Version" => Version::parse(&o.display()).ok(),
                        _ => None,
                    };
                    let other = other.ok_or_else(|| {
                        FuncError::new(format!(
                            "wrong type for value; expected *semver.Version; got {}",
                            a[0].type_name()
                        ))
                    })?;
                    let ordering = this.compare(&other);
                    Ok(match method.as_str() {
                        "Compare" => Value::Int(ordering as i64),
                        "LessThan" => Value::Bool(ordering.is_lt()),
                        "GreaterThan" => Value::Bool(ordering.is_gt()),
                        "LessThanEqual" => Value::Bool(ordering.is_le()),
                        "GreaterThanEqual" => Value::Bool(ordering.is_ge()),
                        _ => Value::Bool(ordering.is_eq()),
                    })
                })
            }
            _ => return None,
        })
    }

    fn display(&self) -> String {
        self.0.to_string()
    }
}
