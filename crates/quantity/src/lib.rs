//! `resource.Quantity`: whether a string is one, and its canonical form. The apiserver re-serializes every
//! quantity (`0.5` → `500m`, `1024Mi` → `1Gi`), so the fake must too or diffs against it would differ
//! from diffs against a real cluster; weaver's validation refuses what does not parse.

#[derive(Clone, Copy, PartialEq)]
enum Format {
    DecimalSI,
    BinarySI,
    DecimalExponent,
}

/// Canonical form of a quantity, or `None` if it does not parse.
pub fn canonicalize(input: &str) -> Option<String> {
    let (mut mantissa, mut exp10, format) = parse(input.trim())?;
    if mantissa == 0 {
        return Some("0".into());
    }
    // Precision finer than nano rounds up (away from zero), as ParseQuantity does.
    if exp10 < -9 {
        let div = 10i128.checked_pow(u32::try_from(-9 - exp10).ok()?)?;
        let q = mantissa / div;
        mantissa = if mantissa % div == 0 { q } else { q + mantissa.signum() };
        exp10 = -9;
        if mantissa == 0 {
            return Some("0".into());
        }
    }
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
    let mut mantissa: i128 = format!("{int_part}{frac_part}").trim_start_matches('0').parse().unwrap_or(0);
    let mut exp10 = -(frac_part.len() as i32);
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
            exp10 += e.parse::<i32>().ok()?;
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
    use super::canonicalize;

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
        ] {
            assert_eq!(canonicalize(i).as_deref(), Some(o), "{i}");
        }
        assert_eq!(canonicalize("abc"), None);
    }
}
