//! The report: measured series with their ratios to a baseline, and single figures with
//! their targets. Printed as a table; serialised as JSON.

use serde::Serialize;

use crate::load::Stats;

#[derive(Debug, Clone, Serialize)]
pub struct Series {
    pub scenario: String,
    pub name: String,
    pub concurrency: usize,
    pub stats: Stats,
    /// The series this one is compared with.
    pub baseline: Option<String>,
    /// requests/s relative to the baseline.
    pub rps_ratio: Option<f64>,
    /// p50 added over the baseline, µs.
    pub p50_added_us: Option<f64>,
    /// p99 relative to the baseline.
    pub p99_ratio: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub scenario: String,
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub target: String,
    pub met: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: String,
    pub database: String,
    pub series: Vec<Series>,
    pub figures: Vec<Figure>,
}

impl Report {
    pub fn series(
        &mut self,
        scenario: &str,
        name: &str,
        concurrency: usize,
        stats: Stats,
        baseline: Option<&str>,
    ) {
        // The baseline run at the same concurrency, else the latest one of that name.
        let named = |s: &&Series| baseline.is_some_and(|b| s.scenario == scenario && s.name == b);
        let base = self
            .series
            .iter()
            .rev()
            .filter(named)
            .find(|s| s.concurrency == concurrency)
            .or_else(|| self.series.iter().rev().find(named))
            .cloned();
        self.series.push(Series {
            scenario: scenario.into(),
            name: name.into(),
            concurrency,
            rps_ratio: base
                .as_ref()
                .map(|b| stats.requests_per_second / b.stats.requests_per_second.max(1e-9)),
            p50_added_us: base.as_ref().map(|b| stats.p50_us - b.stats.p50_us),
            p99_ratio: base
                .as_ref()
                .map(|b| stats.p99_us / b.stats.p99_us.max(1e-9)),
            baseline: baseline.map(str::to_string),
            stats,
        });
    }

    pub fn figure(
        &mut self,
        scenario: &str,
        name: &str,
        value: f64,
        unit: &str,
        target: &str,
        met: Option<bool>,
    ) {
        self.figures.push(Figure {
            scenario: scenario.into(),
            name: name.into(),
            value,
            unit: unit.into(),
            target: target.into(),
            met,
        });
    }

    pub fn find(&self, scenario: &str, name: &str) -> Option<&Series> {
        self.series
            .iter()
            .find(|s| s.scenario == scenario && s.name == name)
    }

    pub fn print(&self) {
        println!("\nmachine: {}\ndatabase: {}\n", self.machine, self.database);
        println!(
            "| scenario | series | conc | requests/s | p50 µs | p99 µs | p99.9 µs | errors | vs baseline |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
        for s in &self.series {
            let versus = match (&s.baseline, s.rps_ratio, s.p50_added_us, s.p99_ratio) {
                (Some(b), Some(r), Some(p50), Some(p99)) => {
                    format!("{b}: rps ×{r:.2}, p50 {p50:+.0} µs, p99 ×{p99:.2}")
                }
                _ => "baseline".into(),
            };
            println!(
                "| {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |",
                s.scenario,
                s.name,
                s.concurrency,
                s.stats.requests_per_second,
                s.stats.p50_us,
                s.stats.p99_us,
                s.stats.p999_us,
                s.stats.errors,
                versus
            );
        }
        println!("\n| scenario | figure | value | target | met |\n|---|---|---:|---|---|");
        for f in &self.figures {
            let met = match f.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            // Unitless figures are scores between 0 and 1 (recall, nDCG): three places.
            let places = if f.unit.is_empty() { 3 } else { 1 };
            println!(
                "| {} | {} | {:.places$} {} | {} | {} |",
                f.scenario, f.name, f.value, f.unit, f.target, met
            );
        }
    }
}
