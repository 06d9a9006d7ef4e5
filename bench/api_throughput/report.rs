//! Turning measurements into the printed report: latency percentiles and
//! the results table with each figure beside its target and its anchor.

use std::fmt::Write as _;
use std::time::Duration;

/// Latency samples in microseconds, sorted on demand.
#[derive(Default)]
pub struct Latencies {
    micros: Vec<u32>,
    sorted: bool,
}

impl Latencies {
    pub fn with_capacity(n: usize) -> Latencies {
        Latencies {
            micros: Vec::with_capacity(n),
            sorted: true,
        }
    }

    pub fn push(&mut self, latency: Duration) {
        self.micros
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        self.sorted = false;
    }

    pub fn extend(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    pub fn len(&self) -> usize {
        self.micros.len()
    }

    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The nearest-rank percentile `p` (0-100); zero when there are no
    /// samples.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.micros.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.micros.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.micros.len()) - 1;
        Duration::from_micros(u64::from(self.micros[index]))
    }
}

/// Milliseconds with a precision that suits the value.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// An integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Decimal megabytes, as the targets are written.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Whether a figure meets its target.
#[derive(Clone, Copy)]
pub enum Verdict {
    Met,
    Missed,
    /// No target, or the figure could not be measured.
    None,
}

impl Verdict {
    pub fn of(met: bool) -> Verdict {
        if met { Verdict::Met } else { Verdict::Missed }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::None => "-",
        }
    }
}

/// One line of the results table.
pub struct Row {
    pub figure: String,
    pub measured: String,
    pub target: String,
    pub verdict: Verdict,
    pub anchor: String,
}

impl Row {
    pub fn new(
        figure: impl Into<String>,
        measured: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
        anchor: impl Into<String>,
    ) -> Row {
        Row {
            figure: figure.into(),
            measured: measured.into(),
            target: target.into(),
            verdict,
            anchor: anchor.into(),
        }
    }
}

/// The results as a Markdown table (readable as plain text too, and pasted
/// into BENCHMARKS.md as it is).
pub fn results_table(rows: &[Row]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.figure.clone(),
                r.measured.clone(),
                r.target.clone(),
                r.verdict.label().to_owned(),
                r.anchor.clone(),
            ]
        })
        .collect();
    table(
        &["Figure", "Measured", "Target", "Verdict", "Anchor"],
        &cells,
    )
}

/// A Markdown table with columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &mut dyn Iterator<Item = &str>| {
        out.push('|');
        for (cell, w) in row.zip(&widths) {
            let pad = w.saturating_sub(cell.chars().count());
            let _ = write!(out, " {cell}{} |", " ".repeat(pad));
        }
        out.push('\n');
    };
    line(&mut out, &mut header.iter().copied());
    out.push('|');
    for w in &widths {
        let _ = write!(out, "{}|", "-".repeat(w + 2));
    }
    out.push('\n');
    for row in rows {
        line(&mut out, &mut row.iter().map(String::as_str));
    }
    out
}
