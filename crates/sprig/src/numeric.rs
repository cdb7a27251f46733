//! Arithmetic and conversions (sprig's numeric.go): integer functions convert with spf13/cast and
//! return `int64`; the `f` functions compute in shopspring/decimal on each float's shortest decimal
//! form, so `addf 0.1 0.2` is 0.3 as in Go.

use gotemplate::{FuncError, Function, Templates, Type, Value};
use rand::Rng;

use crate::go;
use crate::{int_arg, str_arg};

pub(crate) fn register(t: &mut Templates) {
    t.add_function("atoi", Function::new(&[Type::String], |_, a| Ok(Value::Int(atoi(str_arg(a, 0))))));
    t.add_function("int", Function::new(&[Type::Any], |_, a| Ok(Value::Int(go::to_int64(&a[0])))));
    t.add_function("int64", Function::new(&[Type::Any], |_, a| Ok(Value::Int64(go::to_int64(&a[0])))));
    t.add_function("float64", Function::new(&[Type::Any], |_, a| Ok(Value::Float(go::to_float64(&a[0])))));
    t.add_function(
        "toDecimal",
        Function::new(&[Type::Any], |_, a| Ok(Value::Int64(go::parse_int(&go::sprint(&a[0]), 8).unwrap_or(0)))),
    );

    t.add_function("add1", Function::new(&[Type::Any], |_, a| Ok(Value::Int64(go::to_int64(&a[0]).wrapping_add(1)))));
    t.add_function(
        "add",
        Function::variadic(&[], Type::Any, |_, a| {
            Ok(Value::Int64(a.iter().fold(0i64, |sum, v| sum.wrapping_add(go::to_int64(v)))))
        }),
    );
    t.add_function(
        "sub",
        Function::new(&[Type::Any, Type::Any], |_, a| {
            Ok(Value::Int64(go::to_int64(&a[0]).wrapping_sub(go::to_int64(&a[1]))))
        }),
    );
    t.add_function(
        "div",
        Function::new(&[Type::Any, Type::Any], |_, a| {
            let divisor = go::to_int64(&a[1]);
            if divisor == 0 {
                return Err(go::runtime_error("integer divide by zero"));
            }
            Ok(Value::Int64(go::to_int64(&a[0]).wrapping_div(divisor)))
        }),
    );
    t.add_function(
        "mod",
        Function::new(&[Type::Any, Type::Any], |_, a| {
            let divisor = go::to_int64(&a[1]);
            if divisor == 0 {
                return Err(go::runtime_error("integer divide by zero"));
            }
            Ok(Value::Int64(go::to_int64(&a[0]).wrapping_rem(divisor)))
        }),
    );
    t.add_function(
        "mul",
        Function::variadic(&[Type::Any], Type::Any, |_, a| {
            Ok(Value::Int64(
                a[1..].iter().fold(go::to_int64(&a[0]), |product, v| product.wrapping_mul(go::to_int64(v))),
            ))
        }),
    );
    let extreme = |pick: fn(i64, i64) -> i64| {
        Function::variadic(&[Type::Any], Type::Any, move |_, a| {
            Ok(Value::Int64(a[1..].iter().fold(go::to_int64(&a[0]), |m, v| pick(m, go::to_int64(v)))))
        })
    };
    t.add_function("max", extreme(i64::max));
    t.add_function("biggest", extreme(i64::max));
    t.add_function("min", extreme(i64::min));
    let extreme_f = |pick: fn(f64, f64) -> f64| {
        Function::variadic(&[Type::Any], Type::Any, move |_, a| {
            Ok(Value::Float(a[1..].iter().fold(go::to_float64(&a[0]), |m, v| pick(m, go::to_float64(v)))))
        })
    };
    t.add_function("maxf", extreme_f(go_max));
    t.add_function("minf", extreme_f(go_min));
    t.add_function("floor", Function::new(&[Type::Any], |_, a| Ok(Value::Float(go::to_float64(&a[0]).floor()))));
    t.add_function("ceil", Function::new(&[Type::Any], |_, a| Ok(Value::Float(go::to_float64(&a[0]).ceil()))));
    t.add_function(
        "round",
        Function::variadic(&[Type::Any, Type::Int], Type::Float64, |_, a| {
            let round_on = match a.get(2) {
                Some(Value::Float(f)) => *f,
                _ => 0.5,
            };
            Ok(Value::Float(round(go::to_float64(&a[0]), int_arg(a, 1), round_on)))
        }),
    );
    t.add_function(
        "randInt",
        Function::new(&[Type::Int, Type::Int], |_, a| {
            let (min, max) = (int_arg(a, 0), int_arg(a, 1));
            let n = max.wrapping_sub(min);
            if n <= 0 {
                return Err(FuncError::new("invalid argument to Intn"));
            }
            Ok(Value::Int(rand::thread_rng().gen_range(0..n).wrapping_add(min)))
        }),
    );

    t.add_function("add1f", Function::new(&[Type::Any], |_, a| decimal_op(&a[0], &[Value::Int(1)], Op::Add)));
    t.add_function("addf", Function::variadic(&[], Type::Any, |_, a| decimal_op(&Value::Float(0.0), a, Op::Add)));
    t.add_function("subf", Function::variadic(&[Type::Any], Type::Any, |_, a| decimal_op(&a[0], &a[1..], Op::Sub)));
    t.add_function("mulf", Function::variadic(&[Type::Any], Type::Any, |_, a| decimal_op(&a[0], &a[1..], Op::Mul)));
    t.add_function("divf", Function::variadic(&[Type::Any], Type::Any, |_, a| decimal_op(&a[0], &a[1..], Op::Div)));
}

/// strconv.Atoi with sprig's ignored error: 0 for bad syntax, the clamped value when out of range.
fn atoi(s: &str) -> i64 {
    if let Some(i) = go::parse_int(s, 10) {
        return i;
    }
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return if s.starts_with('-') { i64::MIN } else { i64::MAX };
    }
    0
}

/// math.Max: NaN wins, and +0 beats -0.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    a.max(b)
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    a.min(b)
}

/// sprig's round: rounds up when the fraction reaches `round_on`.
fn round(value: f64, places: i64, round_on: f64) -> f64 {
    let pow = 10f64.powf(places as f64);
    let digit = pow * value;
    let fraction = digit - digit.trunc();
    let rounded = if fraction >= round_on { digit.ceil() } else { digit.floor() };
    rounded / pow
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// A decimal `mantissa × 10^exponent`, as shopspring/decimal holds one (here in 128 bits; results
/// that would not fit are computed in float64 instead, which only matters far beyond chart numbers).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Decimal {
    mantissa: i128,
    exponent: i32,
}

/// decimal.DivisionPrecision: quotients are rounded to 16 decimal places.
const DIVISION_PRECISION: i32 = 16;

impl Decimal {
    /// decimal.NewFromFloat: the shortest decimal that reads back as `f`.
    fn from_f64(f: f64) -> Option<Decimal> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Decimal { mantissa: 0, exponent: 0 });
        }
        let text = format!("{f:e}");
        let (digits, exp) = text.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let negative = digits.starts_with('-');
        let digits = digits.trim_start_matches('-');
        let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
        let mantissa: i128 = format!("{int_part}{frac_part}").parse().ok()?;
        Some(Decimal { mantissa: if negative { -mantissa } else { mantissa }, exponent: exp - frac_part.len() as i32 })
    }

    fn to_f64(self) -> f64 {
        format!("{}e{}", self.mantissa, self.exponent).parse().unwrap_or(f64::NAN)
    }

    /// Both mantissas scaled to the smaller exponent.
    fn align(self, other: Decimal) -> Option<(i128, i128, i32)> {
        let exponent = self.exponent.min(other.exponent);
        let scale = |d: Decimal| -> Option<i128> {
            let shift = u32::try_from(d.exponent - exponent).ok()?;
            d.mantissa.checked_mul(10i128.checked_pow(shift)?)
        };
        Some((scale(self)?, scale(other)?, exponent))
    }

    fn apply(self, op: Op, other: Decimal) -> Option<Decimal> {
        match op {
            Op::Add | Op::Sub => {
                let (a, b, exponent) = self.align(other)?;
                let mantissa = if matches!(op, Op::Add) { a.checked_add(b)? } else { a.checked_sub(b)? };
                Some(Decimal { mantissa, exponent })
            }
            Op::Mul => Some(Decimal {
                mantissa: self.mantissa.checked_mul(other.mantissa)?,
                exponent: self.exponent.checked_add(other.exponent)?,
            }),
            Op::Div => self.div_round(other),
        }
    }

    /// decimal.DivRound(d2, 16): the quotient at 10^-16, rounded half away from zero.
    fn div_round(self, other: Decimal) -> Option<Decimal> {
        let scale = -DIVISION_PRECISION;
        let e = self.exponent - other.exponent - scale;
        let (a, b) = if e < 0 {
            (self.mantissa, other.mantissa.checked_mul(10i128.checked_pow((-e) as u32)?)?)
        } else {
            (self.mantissa.checked_mul(10i128.checked_pow(e as u32)?)?, other.mantissa)
        };
        let (q, r) = (a / b, a % b);
        let mut quotient = Decimal { mantissa: q, exponent: scale };
        if r.checked_abs()?.checked_mul(2)? >= b.checked_abs()? {
            let unit = if (a < 0) != (b < 0) { -1 } else { 1 };
            quotient.mantissa = quotient.mantissa.checked_add(unit)?;
        }
        Some(quotient)
    }
}

fn float_op(a: f64, op: Op, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
    }
}

/// sprig's execDecimalOp: each operand through float64 and NewFromFloat, combined left to right.
fn decimal_op(first: &Value, rest: &[Value], op: Op) -> Result<Value, FuncError> {
    let finite = |v: &Value| {
        let f = go::to_float64(v);
        if f.is_finite() {
            Ok(f)
        } else {
            Err(FuncError::new(format!("Cannot create a Decimal from {}", go::sprint(&Value::Float(f)))))
        }
    };
    let mut float = finite(first)?;
    let mut exact = Decimal::from_f64(float);
    for operand in rest {
        let x = finite(operand)?;
        if matches!(op, Op::Div) && x == 0.0 {
            return Err(FuncError::new("decimal division by 0"));
        }
        exact = exact.zip(Decimal::from_f64(x)).and_then(|(a, b)| a.apply(op, b));
        float = match exact {
            Some(d) => d.to_f64(),
            None => float_op(float, op, x),
        };
    }
    Ok(Value::Float(exact.map_or(float, Decimal::to_f64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(first: f64, rest: &[f64], op: Op) -> f64 {
        let rest: Vec<Value> = rest.iter().map(|f| Value::Float(*f)).collect();
        match decimal_op(&Value::Float(first), &rest, op) {
            Ok(Value::Float(f)) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decimal_arithmetic_matches_shopspring() {
        assert_eq!(run(0.1, &[0.2], Op::Add), 0.3);
        assert_eq!(run(1.0, &[3.0], Op::Div), 0.3333333333333333);
        assert_eq!(run(2.0, &[3.0], Op::Div), 0.6666666666666667);
        assert_eq!(run(-2.0, &[3.0], Op::Div), -0.6666666666666667);
        assert_eq!(run(1.1, &[1.1], Op::Mul), 1.21);
        assert_eq!(run(1e300, &[1e300], Op::Mul), 1e300 * 1e300);
        assert_eq!(atoi("99999999999999999999"), i64::MAX);
        assert_eq!(atoi("12x"), 0);
    }
}
