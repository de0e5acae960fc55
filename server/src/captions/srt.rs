//! SubRip (`1`, `00:00:01,000 --> 00:00:04,000`, text lines).

use super::{blocks, clean_text, timestamps::parse_timing, Cue};

pub fn parse(body: &str) -> Result<Vec<Cue>, String> {
    let mut cues = Vec::new();
    for (line_no, lines) in blocks(body) {
        if lines[0].trim().parse::<u64>().is_err() {
            return Err(format!(
                "line {line_no}: expected a cue number, found `{}`",
                lines[0]
            ));
        }
        let timing = lines
            .get(1)
            .ok_or_else(|| format!("line {}: the cue has no timing line", line_no + 1))?;
        let (start, end) = parse_timing(timing)
            .ok_or_else(|| format!("line {}: malformed cue timing `{timing}`", line_no + 1))?;
        let text = clean_text(&lines[2..]);
        if text.is_empty() {
            continue;
        }
        cues.push(Cue {
            start_seconds: start,
            end_seconds: end,
            text,
            labels: Vec::new(),
        });
    }
    Ok(cues)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbered_cues() {
        let body = "1\r\n00:00:01,000 --> 00:00:04,000\r\nHello <b>there</b>\r\n\r\n2\r\n00:01:00,250 --> 00:01:02,000\r\nSecond line\r\nwraps\r\n";
        let cues = parse(body).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].text, "Hello there");
        assert_eq!(cues[1].start_seconds, 60.25);
        assert_eq!(cues[1].text, "Second line wraps");
    }

    #[test]
    fn names_the_bad_line() {
        let err = parse("1\n00:00:01,000 -> 00:00:02,000\nhi\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        assert!(parse("one\n00:00:01,000 --> 00:00:02,000\nhi\n").is_err());
    }
}
