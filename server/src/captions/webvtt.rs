//! WebVTT (`WEBVTT` header, cue blocks with an optional identifier line).

use super::{blocks, clean_text, timestamps::parse_timing, Cue};

pub fn parse(body: &str) -> Result<Vec<Cue>, String> {
    let mut blocks = blocks(body).into_iter();
    match blocks.next() {
        Some((_, header)) if header[0].starts_with("WEBVTT") => {}
        _ => return Err("line 1: a WebVTT file must start with `WEBVTT`".into()),
    }
    let mut cues = Vec::new();
    for (line_no, lines) in blocks {
        let first = lines[0];
        if first.starts_with("NOTE") || first.starts_with("STYLE") || first.starts_with("REGION") {
            continue;
        }
        let (timing_index, timing) = if first.contains("-->") {
            (0, first)
        } else {
            match lines.get(1) {
                Some(line) if line.contains("-->") => (1, *line),
                _ => {
                    return Err(format!(
                    "line {line_no}: expected a cue timing line (`00:00:01.000 --> 00:00:02.000`)"
                ))
                }
            }
        };
        let (start, end) = parse_timing(timing).ok_or_else(|| {
            format!(
                "line {}: malformed cue timing `{timing}`",
                line_no + timing_index
            )
        })?;
        let text = clean_text(&lines[timing_index + 1..]);
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
