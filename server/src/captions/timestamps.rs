//! Cue timing lines: `00:01:02.500 --> 00:01:04.000` (WebVTT, `,` for SRT).

/// Seconds from `hh:mm:ss.mmm`, `mm:ss.mmm` (either `.` or `,` before the milliseconds).
pub fn parse_timestamp(value: &str) -> Option<f64> {
    let value = value.trim();
    let (clock, millis) = value.split_once(['.', ',']).unwrap_or((value, "0"));
    if millis.is_empty() || millis.len() > 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = clock.split(':').collect();
    if !(2..=3).contains(&parts.len())
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let numbers: Vec<u64> = parts
        .iter()
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (h, m, s) = match numbers.as_slice() {
        [m, s] => (0, *m, *s),
        [h, m, s] => (*h, *m, *s),
        _ => return None,
    };
    if m >= 60 || s >= 60 {
        return None;
    }
    let fraction: f64 = format!("0.{millis:0<3}").parse().ok()?;
    Some((h * 3600 + m * 60 + s) as f64 + fraction)
}

/// `(start, end)` from a timing line; cue settings after the end are ignored.
pub fn parse_timing(line: &str) -> Option<(f64, f64)> {
    let (start, rest) = line.split_once("-->")?;
    let end = rest.split_whitespace().next()?;
    let (start, end) = (parse_timestamp(start)?, parse_timestamp(end)?);
    (end >= start).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("00:01:02.500"), Some(62.5));
        assert_eq!(parse_timestamp("01:02,250"), Some(62.25));
        assert_eq!(parse_timestamp("1:00:00.000"), Some(3600.0));
        assert_eq!(parse_timestamp("00:61:00.000"), None);
        assert_eq!(parse_timestamp("aa:00.000"), None);
        assert_eq!(
            parse_timing("00:00:01.000 --> 00:00:04.000 align:start"),
            Some((1.0, 4.0))
        );
        assert_eq!(parse_timing("00:00:05.000 --> 00:00:04.000"), None);
    }
}
