//! The Prometheus text exposition format (version 0.0.4), written by hand: `# HELP` and
//! `# TYPE` once per metric, one line per series, label values escaped. Small enough to
//! own, and a real Prometheus parses it in CI.

use std::fmt::Write;

/// What a metric is, as `# TYPE` says.
#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A text exposition being written.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

/// A label value, escaped as the format requires.
fn escaped(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels_text(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escaped(value)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

impl Exposition {
    /// Starts metric `name`.
    pub fn metric(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        let _ = writeln!(self.text, "# HELP {name} {}", help.replace('\n', " "));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample of the metric started last (`name` with its suffix, for a histogram).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = writeln!(self.text, "{name}{} {}", labels_text(labels), number(value));
    }

    /// A histogram's series: cumulative `buckets` (upper bounds in seconds, counts), then
    /// `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        let mut cumulative = 0;
        for (bound, n) in buckets {
            cumulative += n;
            let le = number(*bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &with_le, cumulative as f64);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.sample(&format!("{name}_bucket"), &with_le, count as f64);
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }

    pub fn finish(self) -> String {
        self.text
    }
}

/// A number as the format writes it (integers without a fraction).
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_written_in_the_text_format() {
        let mut out = Exposition::default();
        out.metric("x_total", Kind::Counter, "How many.");
        out.sample("x_total", &[("op", "a\"b\\c\nd")], 3.0);
        out.metric("d_seconds", Kind::Histogram, "How long.");
        out.histogram("d_seconds", &[("op", "a")], &[(0.5, 1), (1.0, 2)], 1.75, 4);
        assert_eq!(
            out.finish(),
            "# HELP x_total How many.\n# TYPE x_total counter\nx_total{op=\"a\\\"b\\\\c\\nd\"} 3\n\
             # HELP d_seconds How long.\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{op=\"a\",le=\"0.5\"} 1\nd_seconds_bucket{op=\"a\",le=\"1\"} 3\n\
             d_seconds_bucket{op=\"a\",le=\"+Inf\"} 4\nd_seconds_sum{op=\"a\"} 1.75\n\
             d_seconds_count{op=\"a\"} 4\n"
        );
    }
}
