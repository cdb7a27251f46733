//! `resource.Quantity`: whether a string is one, and its canonical form. The apiserver re-serializes every
//! quantity (`0.5` → `500m`, `1024Mi` → `1Gi`), so the fake must too or diffs against it would differ
//! from diffs against a real cluster; weaver's validation refuses what does not parse.

#[derive(Clone, Copy, PartialEq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// The finest precision the API server keeps of a quantity: it parses finer ones rounded up to
/// a nano (`ParseQuantity`).
pub const NANO: i32 = -9;
/// The precision of a built-in kind's resource list (a container's `requests` and `limits`, a
/// ResourceQuota's `hard`, a PersistentVolume's `capacity`, …): the API server's defaulting
/// rounds them up to a milli (`SetDefaults_ResourceList`); other quantities keep a nano.
pub const MILLI: i32 = -3;

/// A quantity's value as the API server stores it at precision `scale` ([`NANO`] or [`MILLI`]),
/// `m·10^e` with `m` free of trailing zeros, so equal quantities written differently (`0.5`
/// and `500m`, `1024Mi` and `1Gi`, `1` and `1000m`) compare equal; `None` if `input` does not
/// parse.
pub fn value(input: &str, scale: i32) -> Option<(i128, i32)> {
    let (mantissa, exp10, _) = parse(input.trim())?;
    if mantissa == 0 {
        return Some((0, 0));
    }
    let (mut mantissa, mut exp10) = rounded_up(mantissa, exp10, scale);
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp10 = exp10.checked_add(1)?;
    }
    Some((mantissa, exp10))
}

/// Canonical form of a quantity, or `None` if it does not parse.
pub fn canonicalize(input: &str) -> Option<String> {
    canonicalize_at(input, NANO)
}

/// Canonical form of a quantity kept at precision `scale` ([`MILLI`] for a built-in kind's
/// resource list), or `None` if it does not parse.
pub fn canonicalize_at(input: &str, scale: i32) -> Option<String> {
    let (mantissa, exp10, format) = parse(input.trim())?;
    if mantissa == 0 {
        return Some("0".into());
    }
    let (mut mantissa, mut exp10) = rounded_up(mantissa, exp10, scale);
    let mut format = format;
    if format == Format::BinarySI {
        let as_int = integer_value(mantissa, exp10);
        match as_int {
            Some(v) if v.abs() >= 1024 => {
                let (mut amount, mut e) = (v, 0);
                while amount % 1024 == 0 {
                    amount /= 1024;
                    e += 10;
                }
                let suffix = match e {
                    0 => "",
                    10 => "Ki",
                    20 => "Mi",
                    30 => "Gi",
                    40 => "Ti",
                    50 => "Pi",
                    _ => "Ei",
                };
                return Some(format!("{amount}{suffix}"));
            }
            _ => format = Format::DecimalSI,
        }
    }
    while mantissa % 10 == 0 {
        mantissa /= 10;
        exp10 += 1;
    }
    match exp10.rem_euclid(3) {
        1 => {
            mantissa *= 10;
            exp10 -= 1;
        }
        2 => {
            mantissa *= 100;
            exp10 -= 2;
        }
        _ => {}
    }
    let suffix = if format == Format::DecimalExponent {
        if exp10 == 0 { String::new() } else { format!("e{exp10}") }
    } else {
        match exp10 {
            -9 => "n".into(),
            -6 => "u".into(),
            -3 => "m".into(),
            0 => String::new(),
            3 => "k".into(),
            6 => "M".into(),
            9 => "G".into(),
            12 => "T".into(),
            15 => "P".into(),
            18 => "E".into(),
            e => format!("e{e}"),
        }
    };
    Some(format!("{mantissa}{suffix}"))
}

/// Precision finer than `scale` rounded up (away from zero), as ParseQuantity and RoundUp round
/// it: a nonzero `mantissa` stays nonzero (`1e-100` is `1n`).
fn rounded_up(mantissa: i128, exp10: i32, scale: i32) -> (i128, i32) {
    if exp10 >= scale {
        return (mantissa, exp10);
    }
    let power = u32::try_from(i64::from(scale) - i64::from(exp10)).ok();
    let Some(div) = power.and_then(|p| 10i128.checked_pow(p)) else { return (mantissa.signum(), scale) };
    let rounded = mantissa / div + if mantissa % div == 0 { 0 } else { mantissa.signum() };
    (rounded, scale)
}

fn integer_value(mantissa: i128, exp10: i32) -> Option<i128> {
    if exp10 >= 0 {
        mantissa.checked_mul(10i128.checked_pow(exp10 as u32)?)
    } else {
        let div = 10i128.checked_pow((-exp10) as u32)?;
        (mantissa % div == 0).then(|| mantissa / div)
    }
}

/// Value as `mantissa * 10^exp10` plus the format its suffix implies.
fn parse(s: &str) -> Option<(i128, i32, Format)> {
    let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let (negative, digits) = match num.as_bytes().first()? {
        b'-' => (true, &num[1..]),
        b'+' => (false, &num[1..]),
        _ => (false, num),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !(int_part.chars().chain(frac_part.chars()).all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    // Digits past i128's range do not parse (rather than reading as zero).
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mut mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut exp10 = -i32::try_from(frac_part.len()).ok()?;
    let format = match suffix {
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 1,
                "Mi" => 2,
                "Gi" => 3,
                "Ti" => 4,
                "Pi" => 5,
                _ => 6,
            };
            mantissa = mantissa.checked_mul(1024i128.checked_pow(power)?)?;
            Format::BinarySI
        }
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => {
            exp10 += match suffix {
                "n" => -9,
                "u" => -6,
                "m" => -3,
                "k" => 3,
                "M" => 6,
                "G" => 9,
                "T" => 12,
                "P" => 15,
                "E" => 18,
                _ => 0,
            };
            Format::DecimalSI
        }
        _ => {
            let e = suffix.strip_prefix(['e', 'E'])?;
            exp10 = exp10.checked_add(e.parse::<i32>().ok()?)?;
            Format::DecimalExponent
        }
    };
    if negative {
        mantissa = -mantissa;
    }
    Some((mantissa, exp10, format))
}

#[cfg(test)]
mod tests {
    use super::{MILLI, NANO, canonicalize, canonicalize_at, value};

    #[test]
    fn canonical_forms() {
        for (i, o) in [
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("1000", "1k"),
            ("2048", "2048"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("100Mi", "100Mi"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("0", "0"),
            ("0.1", "100m"),
            ("250m", "250m"),
            ("1Ki", "1Ki"),
            ("1.5", "1500m"),
            ("0.0000000001", "1n"),
            ("1e-100", "1e-9"),
        ] {
            assert_eq!(canonicalize(i).as_deref(), Some(o), "{i}");
        }
        assert_eq!(canonicalize("abc"), None);
        // As a real 1.32 server stores them in a resource list (and "1.5n" as "2n" elsewhere).
        for (i, o) in [("1.5n", "1m"), ("0.0000000001", "1m"), ("1e-100", "1e-3"), ("1500500u", "1501m"), ("2", "2")] {
            assert_eq!(canonicalize_at(i, MILLI).as_deref(), Some(o), "{i}");
        }
    }

    #[test]
    fn values_compare_equal_quantities_as_equal() {
        assert_eq!(value("0.5", NANO), value("500m", NANO));
        assert_eq!(value("1024Mi", NANO), value("1Gi", NANO));
        assert_eq!(value("1", NANO), value("1000m", NANO));
        assert_eq!(value("1e3", NANO), value("1k", NANO));
        assert_eq!(value("0", NANO), value("0Gi", NANO));
        assert_eq!(value("1k", NANO), Some((1, 3)));
        // Finer than nano, as the server stores it: rounded up to a nano.
        assert_eq!(value("0.0000000001", NANO), value("1n", NANO));
        assert_eq!(value("-1.5n", NANO), value("-2n", NANO));
        // A built-in kind's resource list is kept to a milli.
        assert_eq!(value("0.1000000001", MILLI), value("101m", MILLI));
        assert_eq!(value("1.5n", MILLI), value("1m", MILLI));
        assert_ne!(value("1G", NANO), value("1Gi", NANO));
        assert_ne!(value("100m", NANO), value("1", NANO));
        for bad in ["abc", "1.2.3", ".", "1X", "", "1e", "99999999999999999999999999999999999999999", "1.5e-2147483648"]
        {
            assert_eq!(value(bad, NANO), None, "{bad}");
        }
    }
}
