//! Resource quantities (`500m`, `128Mi`, `1.5Gi`, `2e3`): parsing into an
//! exact number of nano-units so requests, limits and capacities compare.

use std::cmp::Ordering;
use std::fmt;

/// The pattern apimachinery reports when a quantity does not parse.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const NANOS_PER_UNIT: i128 = 1_000_000_000;

/// A parsed quantity in nano-units (1 = 1e-9 of the base unit), rounded up
/// at nano precision as Kubernetes does. Values beyond `i128` saturate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ParsedQuantity {
    nanos: i128,
}

/// A quantity string that does not follow Kubernetes' quantity grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{QUANTITY_FORMAT_ERROR}")]
pub struct QuantityError;

impl ParsedQuantity {
    pub fn from_nanos(nanos: i128) -> Self {
        Self { nanos }
    }

    pub fn nanos(self) -> i128 {
        self.nanos
    }

    /// The value in milli-units, rounded up (how CPU is usually counted).
    pub fn millis_ceil(self) -> i128 {
        div_ceil(self.nanos, 1_000_000)
    }

    /// The value in whole units, rounded up (how memory bytes are counted).
    pub fn units_ceil(self) -> i128 {
        div_ceil(self.nanos, NANOS_PER_UNIT)
    }

    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }

    pub fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// True when the value has no fractional part.
    pub fn is_whole(self) -> bool {
        self.nanos % NANOS_PER_UNIT == 0
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self {
            nanos: self.nanos.saturating_add(other.nanos),
        }
    }
}

impl fmt::Display for ParsedQuantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}n", self.nanos)
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 { q + 1 } else { q }
}

/// Parses a quantity string.
pub fn parse(input: &str) -> Result<ParsedQuantity, QuantityError> {
    let (negative, rest) = match input.as_bytes().first() {
        Some(b'-') => (true, &input[1..]),
        Some(b'+') => (false, &input[1..]),
        _ => (false, input),
    };
    let number_len = rest
        .bytes()
        .take_while(|c| c.is_ascii_digit() || *c == b'.')
        .count();
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return Err(QuantityError);
    }
    let (binary_shift, decimal_exp) = parse_suffix(suffix)?;

    // mantissa * 10^-frac_len * 2^binary_shift * 10^decimal_exp, in nanos.
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .saturating_mul(10)
            .saturating_add(i128::from(c - b'0'));
    }
    let mut value = mantissa.saturating_mul(1i128 << binary_shift);
    let exp10 = decimal_exp + 9 - i32::try_from(frac_part.len()).map_err(|_| QuantityError)?;
    if exp10 >= 0 {
        for _ in 0..exp10 {
            value = value.saturating_mul(10);
        }
    } else {
        let mut divisor: i128 = 1;
        for _ in 0..(-exp10).min(39) {
            divisor = divisor.saturating_mul(10);
        }
        value = div_ceil(value, divisor);
    }
    Ok(ParsedQuantity {
        nanos: if negative { -value } else { value },
    })
}

/// Returns (power of two, power of ten) for a suffix.
fn parse_suffix(suffix: &str) -> Result<(u32, i32), QuantityError> {
    let known = match suffix {
        "" => Some((0, 0)),
        "Ki" => Some((10, 0)),
        "Mi" => Some((20, 0)),
        "Gi" => Some((30, 0)),
        "Ti" => Some((40, 0)),
        "Pi" => Some((50, 0)),
        "Ei" => Some((60, 0)),
        "n" => Some((0, -9)),
        "u" => Some((0, -6)),
        "m" => Some((0, -3)),
        "k" => Some((0, 3)),
        "M" => Some((0, 6)),
        "G" => Some((0, 9)),
        "T" => Some((0, 12)),
        "P" => Some((0, 15)),
        "E" => Some((0, 18)),
        _ => None,
    };
    if let Some(k) = known {
        return Ok(k);
    }
    // A decimal exponent: e3, E-2, e+6.
    let exp = suffix.strip_prefix(['e', 'E']).ok_or(QuantityError)?;
    let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(QuantityError);
    }
    let value: i32 = exp.parse().map_err(|_| QuantityError)?;
    Ok((0, value.clamp(-100, 100)))
}

/// Compares two quantity strings; `None` if either does not parse.
pub fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(parse(a).ok()?.cmp(&parse(b).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i128 {
        match parse(s) {
            Ok(q) => q.nanos(),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn parses_decimal_binary_and_exponent_forms() {
        assert_eq!(nanos("1"), 1_000_000_000);
        assert_eq!(nanos("500m"), 500_000_000);
        assert_eq!(nanos("0.5"), 500_000_000);
        assert_eq!(nanos(".5"), 500_000_000);
        assert_eq!(nanos("1Ki"), 1024 * 1_000_000_000);
        assert_eq!(nanos("1.5Gi"), 1_610_612_736 * 1_000_000_000);
        assert_eq!(nanos("2e3"), 2000 * 1_000_000_000);
        assert_eq!(nanos("1E-3"), 1_000_000);
        assert_eq!(nanos("128M"), 128_000_000 * 1_000_000_000);
        assert_eq!(nanos("-1"), -1_000_000_000);
        assert_eq!(nanos("+7k"), 7000 * 1_000_000_000);
        assert_eq!(nanos("1Ei"), (1i128 << 60) * 1_000_000_000);
    }

    #[test]
    fn rounds_sub_nano_values_up() {
        assert_eq!(nanos("0.1n"), 1);
        assert_eq!(nanos("1e-12"), 1);
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in [
            "", "abc", "1.2.3", "1Kb", "1K", "1 Gi", "Gi", "1e", "1ee3", ".", "1i",
        ] {
            assert_eq!(parse(bad), Err(QuantityError), "{bad}");
        }
    }

    #[test]
    fn compares_across_units() {
        assert_eq!(compare("1Gi", "1G"), Some(Ordering::Greater));
        assert_eq!(compare("1000m", "1"), Some(Ordering::Equal));
        assert_eq!(compare("100m", "0.2"), Some(Ordering::Less));
        assert_eq!(compare("x", "1"), None);
    }
}
