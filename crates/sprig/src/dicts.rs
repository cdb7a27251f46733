//! Dictionary functions (sprig's dict.go), with dario.cat/mergo v1.0.1's merge rules and
//! mitchellh/copystructure's deep copy. Maps are shared handles: `set`, `unset` and `merge` change
//! the map they are given, as in Go.

use gotemplate::{FuncError, Function, Map, Templates, Type, Value};

use crate::go;
use crate::str_arg;

pub(crate) fn register(t: &mut Templates) {
    t.add_function(
        "dict",
        Function::variadic(&[], Type::Any, |_, a| {
            let map = Map::new();
            for pair in a.chunks(2) {
                map.insert(go::strval(&pair[0]), pair.get(1).cloned().unwrap_or_else(|| Value::from("")));
            }
            Ok(Value::Map(map))
        }),
    );
    t.add_function(
        "get",
        Function::new(&[Type::Map, Type::String], |_, a| {
            Ok(map_arg(&a[0]).and_then(|m| m.get(str_arg(a, 1))).unwrap_or_else(|| Value::from("")))
        }),
    );
    t.add_function(
        "set",
        Function::new(&[Type::Map, Type::String, Type::Any], |_, a| {
            let map = map_arg(&a[0]).ok_or_else(|| FuncError::new("assignment to entry in nil map"))?;
            map.insert(str_arg(a, 1), a[2].clone());
            Ok(a[0].clone())
        }),
    );
    t.add_function(
        "unset",
        Function::new(&[Type::Map, Type::String], |_, a| {
            // A nil map stays nil, which prints as an empty map.
            let map = map_arg(&a[0]).unwrap_or_default();
            map.remove(str_arg(a, 1));
            Ok(Value::Map(map))
        }),
    );
    t.add_function(
        "hasKey",
        Function::new(&[Type::Map, Type::String], |_, a| {
            Ok(Value::Bool(map_arg(&a[0]).is_some_and(|m| m.contains_key(str_arg(a, 1)))))
        }),
    );
    t.add_function(
        "pluck",
        Function::variadic(&[Type::String], Type::Map, |_, a| {
            let key = str_arg(a, 0);
            Ok(Value::from(a[1..].iter().filter_map(|d| map_arg(d)?.get(key)).collect::<Vec<_>>()))
        }),
    );
    t.add_function(
        "keys",
        Function::variadic(&[], Type::Map, |_, a| {
            // Go lists each map's keys in a random order; here they come sorted.
            Ok(go::strings(a.iter().filter_map(map_arg).flat_map(|m| m.keys())))
        }),
    );
    t.add_function(
        "values",
        Function::new(&[Type::Map], |_, a| {
            let values = map_arg(&a[0]).map(|m| m.entries().into_iter().map(|(_, v)| v).collect()).unwrap_or_default();
            Ok(Value::List(values))
        }),
    );
    t.add_function(
        "pick",
        Function::variadic(&[Type::Map], Type::String, |_, a| {
            let source = map_arg(&a[0]);
            let out = Map::new();
            for key in a[1..].iter().filter_map(Value::as_str) {
                if let Some(value) = source.as_ref().and_then(|m| m.get(key)) {
                    out.insert(key, value);
                }
            }
            Ok(Value::Map(out))
        }),
    );
    t.add_function(
        "omit",
        Function::variadic(&[Type::Map], Type::String, |_, a| {
            let omit: Vec<&str> = a[1..].iter().filter_map(Value::as_str).collect();
            let entries = map_arg(&a[0]).map(|m| m.entries()).unwrap_or_default();
            Ok(Value::Map(entries.into_iter().filter(|(k, _)| !omit.contains(&k.as_str())).collect()))
        }),
    );
    for (name, overwrite) in
        [("merge", false), ("mustMerge", false), ("mergeOverwrite", true), ("mustMergeOverwrite", true)]
    {
        t.add_function(
            name,
            Function::variadic(&[Type::Map], Type::Map, move |_, a| {
                let mut dst = map_arg(&a[0]);
                for src in a[1..].iter().filter_map(map_arg) {
                    // mergo makes a nil destination map when the source is not nil.
                    let dst = dst.get_or_insert_with(Map::new);
                    merge_maps(dst, &src, overwrite, 0)?;
                }
                // A nil map stays nil, which prints as an empty map.
                Ok(Value::Map(dst.unwrap_or_default()))
            }),
        );
    }
    for name in ["deepCopy", "mustDeepCopy"] {
        t.add_function(
            name,
            Function::new(&[Type::Any], |_, a| {
                if a[0].is_nil() {
                    return Err(FuncError::new("reflect: call of reflect.Value.Type on zero Value"));
                }
                deep_copy(&a[0], 0)
            }),
        );
    }
    t.add_function("dig", Function::variadic(&[], Type::Any, |_, a| dig(a)));
}

fn map_arg(value: &Value) -> Option<Map> {
    match value {
        Value::Map(map) => Some(map.clone()),
        _ => None,
    }
}

/// mergo's deepMerge of `src` into `dst` for `map[string]interface{}`: a missing or empty (zero)
/// destination value takes the source's; with `overwrite` every non-nil source value wins, except
/// that maps on both sides merge recursively and a non-empty destination keeps its slices' place.
fn merge_maps(dst: &Map, src: &Map, overwrite: bool, depth: usize) -> Result<(), FuncError> {
    if depth > gotemplate::MAX_NESTING {
        return Err(FuncError::too_deep());
    }
    for (key, src_value) in src.entries() {
        let dst_value = dst.get(&key);
        if src_value.is_nil() {
            if overwrite {
                dst.insert(key, Value::Nil);
            }
            continue;
        }
        // mergo's slice branch always stores a slice: the source's when overwriting.
        if overwrite && go::kind(&src_value) == "slice" {
            dst.insert(key, src_value);
            continue;
        }
        if let (Value::Map(src_map), Some(Value::Map(dst_map))) = (&src_value, &dst_value) {
            merge_maps(dst_map, src_map, overwrite, depth + 1)?;
        }
        if let Some(existing) = &dst_value
            && !go::is_empty(existing)
        {
            let src_kind = go::kind(&src_value);
            if src_kind == "slice" || src_kind == "map" && go::kind(existing) == "map" {
                continue;
            }
        }
        if overwrite || dst_value.as_ref().is_none_or(go::is_empty) {
            dst.insert(key, src_value);
        }
    }
    Ok(())
}

/// copystructure.Copy: new maps and slices all the way down; other values are immutable.
/// A named map type (helm's `.Values`) is copied as a plain map.
fn deep_copy(value: &Value, depth: usize) -> Result<Value, FuncError> {
    if depth > gotemplate::MAX_NESTING {
        return Err(FuncError::too_deep());
    }
    if let Value::Object(object) = value
        && let Some(map) = object.as_map()
    {
        return deep_copy(&Value::Map(map), depth);
    }
    Ok(match value {
        Value::Map(map) => {
            let copy = Map::new();
            for (k, v) in map.entries() {
                copy.insert(k, deep_copy(&v, depth + 1)?);
            }
            Value::Map(copy)
        }
        Value::List(items) => {
            Value::List(items.iter().map(|v| deep_copy(v, depth + 1)).collect::<Result<Vec<_>, _>>()?.into())
        }
        other => other.clone(),
    })
}

/// The panic of a failed Go type assertion `value.(map[string]interface{})` or `.(string)`.
fn conversion_error(value: &Value, want: &str) -> FuncError {
    let got = if value.is_nil() { "nil" } else { value.type_name() };
    FuncError::new(format!("interface conversion: interface {{}} is {got}, not {want}"))
}

/// sprig's dig: `dig "a" "b" default dict` walks nested maps, the default when a key is missing.
fn dig(args: &[Value]) -> Result<Value, FuncError> {
    if args.len() < 3 {
        return Err(FuncError::new("dig needs at least three arguments"));
    }
    let n = args.len();
    let Some(mut dict) = map_arg(&args[n - 1]) else {
        return Err(conversion_error(&args[n - 1], "map[string]interface {}"));
    };
    let default = &args[n - 2];
    let mut keys = Vec::with_capacity(n - 2);
    for key in &args[..n - 2] {
        keys.push(key.as_str().ok_or_else(|| conversion_error(key, "string"))?);
    }
    for (i, key) in keys.iter().enumerate() {
        let Some(step) = dict.get(key) else { return Ok(default.clone()) };
        if i == keys.len() - 1 {
            return Ok(step);
        }
        dict = match &step {
            Value::Map(map) => map.clone(),
            other => return Err(conversion_error(other, "map[string]interface {}")),
        };
    }
    Ok(default.clone())
}
