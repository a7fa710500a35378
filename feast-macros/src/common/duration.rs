//! Duration strings: `"1d"`, `"2h 30m"`, `"90s"`, `"0s"`.

/// The units a duration string may use, largest first.
const UNITS: [(&str, u64); 5] = [
    ("w", 604_800),
    ("d", 86_400),
    ("h", 3_600),
    ("m", 60),
    ("s", 1),
];

/// Parses a duration into whole seconds. Each part is a number followed by a
/// unit (`w`, `d`, `h`, `m`, `s`); parts may be separated by spaces.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let hint = "expected a duration like \"1d\", \"2h 30m\" or \"90s\" (units: w, d, h, m, s)";
    let text = s.trim();
    if text.is_empty() {
        return Err(format!("empty duration; {hint}"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration \"{s}\": `{rest}` does not start with a number; {hint}"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid duration \"{s}\": number too large"))?;
        rest = rest[digits..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        if unit.is_empty() {
            return Err(format!(
                "invalid duration \"{s}\": `{number}` has no unit; {hint}"
            ));
        }
        let Some((_, secs)) = UNITS.iter().find(|(u, _)| *u == unit) else {
            return Err(format!(
                "invalid duration \"{s}\": unknown unit `{unit}`; {hint}"
            ));
        };
        total = number
            .checked_mul(*secs)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration \"{s}\": too large"))?;
        rest = rest[unit_len..].trim_start();
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert_eq!(parse_duration("2h 30m"), Ok(9_000));
        assert_eq!(parse_duration("2h30m"), Ok(9_000));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("1w 1s"), Ok(604_801));
        assert_eq!(parse_duration(" 0s "), Ok(0));
    }

    #[test]
    fn rejects_bad_durations_with_the_reason() {
        assert!(
            parse_duration("1x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(parse_duration("1").unwrap_err().contains("`1` has no unit"));
        assert!(
            parse_duration("d")
                .unwrap_err()
                .contains("does not start with a number")
        );
        assert!(parse_duration("").unwrap_err().contains("empty duration"));
        assert!(
            parse_duration("99999999999999999999w")
                .unwrap_err()
                .contains("too large")
        );
        assert!(
            parse_duration("1.5h")
                .unwrap_err()
                .contains("`1` has no unit")
        );
    }
}
