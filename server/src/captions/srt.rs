//! SubRip (`1`, `00:00:01,000 --> 00:00:04,000`, text lines).

use super::{blocks, timed_cues, Cue};

/// A block is a cue number, a timing line, then the text.
pub fn parse(body: &str) -> Result<Vec<Cue>, String> {
    timed_cues(blocks(body), |line_no, lines| {
        if lines[0].trim().parse::<u64>().is_err() {
            return Err(format!(
                "line {line_no}: expected a cue number, found `{}`",
                lines[0]
            ));
        }
        if lines.len() < 2 {
            return Err(format!("line {}: the cue has no timing line", line_no + 1));
        }
        Ok(Some(1))
    })
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
