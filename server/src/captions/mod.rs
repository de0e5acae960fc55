//! Caption file parsers: WebVTT, SRT and JSON segments become timed cues. A malformed file
//! is an error naming the line (or JSON path) at fault.

mod json;
mod srt;
mod timestamps;
mod webvtt;

/// One timed cue.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
    pub labels: Vec<String>,
}

/// The formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    WebVtt,
    Srt,
    Json,
}

impl Format {
    /// The format a URL's extension suggests.
    pub fn from_url(url: &str) -> Option<Format> {
        let path = url
            .split(['?', '#'])
            .next()
            .unwrap_or(url)
            .to_ascii_lowercase();
        if path.ends_with(".vtt") {
            Some(Format::WebVtt)
        } else if path.ends_with(".srt") {
            Some(Format::Srt)
        } else if path.ends_with(".json") {
            Some(Format::Json)
        } else {
            None
        }
    }
}

/// Parses `body` as `format`. An empty file, or one without cues, is an error too.
pub fn parse(format: Format, body: &str) -> Result<Vec<Cue>, String> {
    let body = body.strip_prefix('\u{feff}').unwrap_or(body);
    let cues = match format {
        Format::WebVtt => webvtt::parse(body)?,
        Format::Srt => srt::parse(body)?,
        Format::Json => json::parse(body)?,
    };
    if cues.is_empty() {
        return Err("the file has no cues".into());
    }
    Ok(cues)
}

/// The cue loop the block formats (SubRip, WebVTT) share. For each block, `timing_line`
/// says which of its lines is the timing line (`None`: the block is not a cue, such as a
/// WebVTT `NOTE`), or what is wrong with it; the lines after the timing are the text. A cue
/// whose text is empty once cleaned is left out.
fn timed_cues<'a>(
    blocks: impl IntoIterator<Item = (usize, Vec<&'a str>)>,
    timing_line: impl Fn(usize, &[&'a str]) -> Result<Option<usize>, String>,
) -> Result<Vec<Cue>, String> {
    let mut cues = Vec::new();
    for (line_no, lines) in blocks {
        let Some(at) = timing_line(line_no, &lines)? else {
            continue;
        };
        let timing = lines[at];
        let (start, end) = timestamps::parse_timing(timing)
            .ok_or_else(|| format!("line {}: malformed cue timing `{timing}`", line_no + at))?;
        let text = clean_text(&lines[at + 1..]);
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

/// Removes markup tags (`<i>`, `<v Speaker>`, `{\an8}`) and joins lines with spaces.
fn clean_text(lines: &[&str]) -> String {
    let mut out = String::new();
    for line in lines {
        let mut in_tag = false;
        let mut in_brace = false;
        for c in line.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                '{' => in_brace = true,
                '}' if in_brace => in_brace = false,
                _ if in_tag || in_brace => {}
                _ => out.push(c),
            }
        }
        out.push(' ');
    }
    let text = out.split_whitespace().collect::<Vec<_>>().join(" ");
    text.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
}

/// Splits a cue-based file into blocks of non-blank lines, each with its first line number.
fn blocks(body: &str) -> Vec<(usize, Vec<&str>)> {
    let mut blocks = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, line) in body.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push((start, std::mem::take(&mut current)));
            }
        } else {
            if current.is_empty() {
                start = i + 1;
            }
            current.push(line);
        }
    }
    if !current.is_empty() {
        blocks.push((start, current));
    }
    blocks
}
