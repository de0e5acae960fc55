//! JSON segments: `[{"start_seconds", "end_seconds", "text", "labels"?}]` or
//! `{"segments": [...]}`.

use serde::Deserialize;

use super::Cue;

#[derive(Deserialize)]
struct JsonCue {
    start_seconds: f64,
    end_seconds: f64,
    text: String,
    #[serde(default)]
    labels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Document {
    List(Vec<JsonCue>),
    Wrapped { segments: Vec<JsonCue> },
}

pub fn parse(body: &str) -> Result<Vec<Cue>, String> {
    let document: Document = serde_json::from_str(body).map_err(|e| {
        format!(
            "not a JSON segment list (`[{{\"start_seconds\", \"end_seconds\", \"text\"}}]`): {e}"
        )
    })?;
    let (Document::List(items) | Document::Wrapped { segments: items }) = document;
    items
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            if !c.start_seconds.is_finite()
                || c.start_seconds < 0.0
                || c.end_seconds < c.start_seconds
            {
                return Err(format!(
                    "segments[{i}]: times must satisfy 0 <= start_seconds <= end_seconds"
                ));
            }
            if c.text.trim().is_empty() {
                return Err(format!("segments[{i}].text is blank"));
            }
            Ok(Cue {
                start_seconds: c.start_seconds,
                end_seconds: c.end_seconds,
                text: c.text.trim().to_string(),
                labels: c.labels,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_shapes_and_errors() {
        let a = super::parse(r#"[{"start_seconds":1,"end_seconds":2,"text":"a","labels":["x"]}]"#)
            .unwrap();
        assert_eq!(a[0].labels, ["x"]);
        let b = super::parse(r#"{"segments":[{"start_seconds":1,"end_seconds":2,"text":"b"}]}"#)
            .unwrap();
        assert_eq!(b[0].text, "b");
        assert!(
            super::parse(r#"[{"start_seconds":3,"end_seconds":2,"text":"c"}]"#)
                .unwrap_err()
                .starts_with("segments[0]")
        );
        assert!(super::parse("{").is_err());
    }
}
