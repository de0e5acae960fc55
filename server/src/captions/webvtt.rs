//! WebVTT (`WEBVTT` header, cue blocks with an optional identifier line).

use super::{blocks, timed_cues, Cue};

/// After the `WEBVTT` header block, a cue block is an optional identifier line, a timing
/// line, then the text; `NOTE`, `STYLE` and `REGION` blocks are not cues.
pub fn parse(body: &str) -> Result<Vec<Cue>, String> {
    let mut blocks = blocks(body).into_iter();
    match blocks.next() {
        Some((_, header)) if header[0].starts_with("WEBVTT") => {}
        _ => return Err("line 1: a WebVTT file must start with `WEBVTT`".into()),
    }
    timed_cues(blocks, |line_no, lines| {
        let first = lines[0];
        if ["NOTE", "STYLE", "REGION"]
            .iter()
            .any(|k| first.starts_with(k))
        {
            return Ok(None);
        }
        if first.contains("-->") {
            return Ok(Some(0));
        }
        match lines.get(1) {
            Some(line) if line.contains("-->") => Ok(Some(1)),
            _ => Err(format!(
                "line {line_no}: expected a cue timing line (`00:00:01.000 --> 00:00:02.000`)"
            )),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cues_with_identifiers_notes_and_tags() {
        let body = "WEBVTT - news\n\nNOTE a comment\n\n1\n00:00:01.000 --> 00:00:04.500 align:start\n<v Anchor>Good <i>evening</i></v>\nand welcome\n\n00:00:05.000 --> 00:00:07.000\nTraffic &amp; weather\n";
        let cues = parse(body).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].start_seconds, 1.0);
        assert_eq!(cues[0].end_seconds, 4.5);
        assert_eq!(cues[0].text, "Good evening and welcome");
        assert_eq!(cues[1].text, "Traffic & weather");
    }

    #[test]
    fn rejects_a_missing_header_and_bad_timings() {
        assert!(parse("00:00:01.000 --> 00:00:02.000\nhi")
            .unwrap_err()
            .contains("WEBVTT"));
        let err = parse("WEBVTT\n\n00:00:0x.000 --> 00:00:02.000\nhi\n").unwrap_err();
        assert!(err.starts_with("line 3"), "{err}");
    }
}
