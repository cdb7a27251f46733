//! Defaults, flow control and reflection (sprig's defaults.go, reflect.go and the small functions
//! of functions.go).

use gotemplate::{FuncError, Function, Templates, Type, Value};

use crate::go;
use crate::str_arg;

pub(crate) fn register(t: &mut Templates) {
    t.add_function("hello", Function::new(&[], |_, _| Ok(Value::from("Hello!"))));
    t.add_function(
        "default",
        Function::variadic(&[Type::Any], Type::Any, |_, a| {
            Ok(match a.get(1) {
                Some(given) if !go::is_empty(given) => given.clone(),
                _ => a[0].clone(),
            })
        }),
    );
    t.add_function("empty", Function::new(&[Type::Any], |_, a| Ok(Value::Bool(go::is_empty(&a[0])))));
    t.add_function(
        "coalesce",
        Function::variadic(&[], Type::Any, |_, a| Ok(a.iter().find(|v| !go::is_empty(v)).cloned().unwrap_or_default())),
    );
    t.add_function(
        "all",
        Function::variadic(&[], Type::Any, |_, a| Ok(Value::Bool(a.iter().all(|v| !go::is_empty(v))))),
    );
    t.add_function(
        "any",
        Function::variadic(&[], Type::Any, |_, a| Ok(Value::Bool(a.iter().any(|v| !go::is_empty(v))))),
    );
    t.add_function(
        "ternary",
        Function::new(&[Type::Any, Type::Any, Type::Bool], |_, a| {
            Ok(if matches!(a[2], Value::Bool(true)) { a[0].clone() } else { a[1].clone() })
        }),
    );
    t.add_function("fail", Function::new(&[Type::String], |_, a| Err(FuncError::new(str_arg(a, 0)))));

    t.add_function("typeOf", Function::new(&[Type::Any], |_, a| Ok(Value::from(go::type_name(&a[0])))));
    t.add_function(
        "typeIs",
        Function::new(&[Type::String, Type::Any], |_, a| Ok(Value::Bool(str_arg(a, 0) == go::type_name(&a[1])))),
    );
    t.add_function(
        "typeIsLike",
        Function::new(&[Type::String, Type::Any], |_, a| {
            let (target, actual) = (str_arg(a, 0), go::type_name(&a[1]));
            Ok(Value::Bool(target == actual || actual.strip_prefix('*') == Some(target)))
        }),
    );
    t.add_function("kindOf", Function::new(&[Type::Any], |_, a| Ok(Value::from(go::kind(&a[0])))));
    t.add_function(
        "kindIs",
        Function::new(&[Type::String, Type::Any], |_, a| Ok(Value::Bool(str_arg(a, 0) == go::kind(&a[1])))),
    );
    t.add_function(
        "deepEqual",
        Function::new(&[Type::Any, Type::Any], |_, a| Ok(Value::Bool(go::deep_equal(&a[0], &a[1])?))),
    );
}
