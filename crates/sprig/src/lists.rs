//! List functions (sprig's list.go). They take any slice through reflection and build
//! `[]interface{}`; the plain and `must` variants fail alike, since text/template turns the plain
//! ones' panics into the same errors.

use std::sync::Arc;

use gotemplate::{FuncError, Function, Templates, Type, Value};

use crate::go::{self, MAX_LEN, too_large};
use crate::int_arg;

pub(crate) fn register(t: &mut Templates) {
    let list = Function::variadic(&[], Type::Any, |_, a| Ok(Value::from(a.to_vec())));
    t.add_function("list", list.clone());
    t.add_function("tuple", list);

    let with_items = |what: &'static str, f: fn(Arc<[Value]>, &Value) -> Value| {
        Function::new(&[Type::Any, Type::Any], move |_, a| Ok(f(items(&a[0], what)?, &a[1])))
    };
    for name in ["append", "push", "mustAppend", "mustPush"] {
        t.add_function(
            name,
            with_items("Cannot push on type ", |items, v| Value::from([&items[..], std::slice::from_ref(v)].concat())),
        );
    }
    for name in ["prepend", "mustPrepend"] {
        t.add_function(
            name,
            with_items("Cannot prepend on type ", |items, v| {
                Value::from([std::slice::from_ref(v), &items[..]].concat())
            }),
        );
    }

    let unary = |what: &'static str, f: ListFunction| Function::new(&[Type::Any], move |_, a| f(items(&a[0], what)?));
    let compact: ListFunction = |l| Ok(Value::List(l.iter().filter(|v| !go::is_empty(v)).cloned().collect()));
    type ListFunction = fn(Arc<[Value]>) -> Result<Value, FuncError>;
    let functions: [(&str, &str, &str, ListFunction); 7] = [
        ("first", "mustFirst", "Cannot find first on type ", |l| Ok(l.first().cloned().unwrap_or_default())),
        ("last", "mustLast", "Cannot find last on type ", |l| Ok(l.last().cloned().unwrap_or_default())),
        ("rest", "mustRest", "Cannot find rest on type ", |l| Ok(Value::List(l.get(1..).unwrap_or_default().into()))),
        ("initial", "mustInitial", "Cannot find initial on type ", |l| {
            Ok(Value::List(l.get(..l.len().saturating_sub(1)).unwrap_or_default().into()))
        }),
        ("reverse", "mustReverse", "Cannot find reverse on type ", |l| {
            Ok(Value::List(l.iter().rev().cloned().collect()))
        }),
        ("uniq", "mustUniq", "Cannot find uniq on type ", |l| {
            let mut out: Vec<Value> = Vec::new();
            for item in l.iter() {
                if !contains(&out, item)? {
                    out.push(item.clone());
                }
            }
            Ok(Value::from(out))
        }),
        ("compact", "mustCompact", "Cannot compact on type ", compact),
    ];
    for (name, must, what, f) in functions {
        t.add_function(name, unary(what, f));
        t.add_function(must, unary(what, f));
    }

    for name in ["without", "mustWithout"] {
        t.add_function(
            name,
            Function::variadic(&[Type::Any], Type::Any, |_, a| {
                let list = items(&a[0], "Cannot find without on type ")?;
                let mut kept = Vec::new();
                for item in list.iter() {
                    if !contains(&a[1..], item)? {
                        kept.push(item.clone());
                    }
                }
                Ok(Value::from(kept))
            }),
        );
    }
    for name in ["has", "mustHas"] {
        t.add_function(
            name,
            Function::new(&[Type::Any, Type::Any], |_, a| {
                if a[1].is_nil() {
                    return Ok(Value::Bool(false));
                }
                let list = items(&a[1], "Cannot find has on type ")?;
                Ok(Value::Bool(contains(&list, &a[0])?))
            }),
        );
    }
    for name in ["slice", "mustSlice"] {
        t.add_function(name, Function::variadic(&[Type::Any], Type::Any, slice));
    }
    t.add_function(
        "concat",
        Function::variadic(&[], Type::Any, |_, a| {
            let mut out = Vec::new();
            for list in a {
                if list.is_nil() {
                    return Err(go::nil_kind_error());
                }
                match go::slice_items(list) {
                    Some(items) => out.extend(items.iter().cloned()),
                    None => return Err(FuncError::new(format!("Cannot concat type {} as list", go::kind(list)))),
                }
            }
            Ok(Value::from(out))
        }),
    );
    for name in ["chunk", "mustChunk"] {
        t.add_function(
            name,
            Function::new(&[Type::Int, Type::Any], |_, a| chunk(int_arg(a, 0), items(&a[1], "Cannot chunk type ")?)),
        );
    }
    t.add_function(
        "until",
        Function::new(&[Type::Int], |_, a| until_step(0, int_arg(a, 0), step_for(0, int_arg(a, 0)))),
    );
    t.add_function(
        "untilStep",
        Function::new(&[Type::Int, Type::Int, Type::Int], |_, a| {
            until_step(int_arg(a, 0), int_arg(a, 1), int_arg(a, 2))
        }),
    );
    t.add_function("seq", Function::variadic(&[], Type::Int, |_, a| seq(a)));
}

/// Whether `list` holds an item deeply equal to `value` (sprig's `inList`).
fn contains(list: &[Value], value: &Value) -> Result<bool, FuncError> {
    for item in list {
        if go::deep_equal(item, value)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The elements of a slice argument, or sprig's "Cannot ... type KIND" error (nil panics in Go).
fn items(value: &Value, what: &str) -> Result<Arc<[Value]>, FuncError> {
    if value.is_nil() {
        return Err(go::nil_kind_error());
    }
    go::slice_items(value).ok_or_else(|| FuncError::new(format!("{what}{}", go::kind(value))))
}

/// sprig's slice: `list[start:end]` of the same slice type; an empty list gives nil.
fn slice(_: &mut gotemplate::Ctx<'_>, a: &[Value]) -> Result<Value, FuncError> {
    let list = &a[0];
    if list.is_nil() {
        return Err(go::nil_kind_error());
    }
    let Some(items) = go::slice_items(list) else {
        return Err(FuncError::new(format!("list should be type of slice or array but {}", go::kind(list))));
    };
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    let len = items.len() as i64;
    let start = a.get(1).map_or(0, go::to_int64);
    let end = a.get(2).map_or(len, go::to_int64);
    if start < 0 || end < start || end > len {
        return Err(FuncError::new("reflect.Value.Slice: slice index out of bounds"));
    }
    let part = Value::List(items[start as usize..end as usize].into());
    Ok(match list {
        Value::Object(o) => go::typed(static_type_name(o.type_name()), part),
        _ => part,
    })
}

/// The typed slices this crate makes, by name (a slice keeps its type).
fn static_type_name(name: &str) -> &'static str {
    match name {
        "[]string" => "[]string",
        "[]int" => "[]int",
        "[][]interface {}" => "[][]interface {}",
        _ => "[]interface {}",
    }
}

/// sprig's chunk, with Go's float arithmetic for the chunk count and makeslice's panic.
fn chunk(size: i64, list: Arc<[Value]>) -> Result<Value, FuncError> {
    let len = list.len() as i64;
    let count = go::float_to_int(((len - 1) as f64 / size as f64).floor() + 1.0);
    let makeslice = || go::runtime_error("makeslice: len out of range");
    if count < 0 || count > MAX_LEN as i64 {
        return Err(makeslice());
    }
    let mut chunks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let mut chunk_len = size;
        if i == count - 1 {
            chunk_len = go::float_to_int((len as f64 % size as f64).floor());
            if chunk_len == 0 {
                chunk_len = size;
            }
        }
        if chunk_len < 0 {
            return Err(makeslice());
        }
        let mut chunk = Vec::new();
        for j in 0..chunk_len {
            let index = i * size + j;
            let item = usize::try_from(index)
                .ok()
                .and_then(|ix| list.get(ix))
                .ok_or_else(|| go::runtime_error(&format!("index out of range [{index}] with length {len}")))?;
            chunk.push(item.clone());
        }
        chunks.push(Value::from(chunk));
    }
    Ok(go::typed("[][]interface {}", Value::from(chunks)))
}

fn step_for(start: i64, stop: i64) -> i64 {
    if stop < start { -1 } else { 1 }
}

/// sprig's untilStep as a `[]int`.
fn until_step(start: i64, stop: i64, step: i64) -> Result<Value, FuncError> {
    Ok(go::ints(range(start, stop, step)?))
}

fn range(start: i64, stop: i64, step: i64) -> Result<Vec<i64>, FuncError> {
    let count = if stop < start {
        if step >= 0 { 0 } else { (start as i128 - stop as i128 - 1) / -(step as i128) + 1 }
    } else if step <= 0 {
        0
    } else {
        (stop as i128 - start as i128 - 1) / step as i128 + 1
    };
    let count = count.max(0);
    if count > MAX_LEN as i128 {
        return Err(too_large("untilStep"));
    }
    Ok((0..count as i64).map(|i| start.wrapping_add(i.wrapping_mul(step))).collect())
}

/// sprig's seq: like the Unix command, 1-based, counting down when the end is smaller.
fn seq(params: &[Value]) -> Result<Value, FuncError> {
    let p: Vec<i64> = params.iter().map(|v| v.as_int().unwrap_or_default()).collect();
    let numbers = match p[..] {
        [end] => {
            let increment = step_for(1, end);
            range(1, end.wrapping_add(increment), increment)?
        }
        [start, end] => {
            let step = step_for(start, end);
            range(start, end.wrapping_add(step), step)?
        }
        [start, step, end] => {
            let increment = step_for(start, end);
            if end < start && step > 0 {
                return Ok(Value::from(""));
            }
            range(start, end.wrapping_add(increment), step)?
        }
        _ => return Ok(Value::from("")),
    };
    let parts: Vec<String> = numbers.iter().map(i64::to_string).collect();
    Ok(Value::from(parts.join(" ")))
}
