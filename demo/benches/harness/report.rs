//! The figures: a table with one column per target, printed and written to
//! BENCHMARKS.md, and the numbers that go into its cells.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

/// A figure's cell per target: its text, and whether it meets the goal (`None`
/// where the figure has none).
type Cells = BTreeMap<String, (String, Option<bool>)>;

/// Everything a run found: per figure, in the order first set, its goal and
/// cells; and notes.
#[derive(Debug, Default)]
pub(crate) struct Report {
    rows: Vec<(String, String, Cells)>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// Records `text` for `target` in the row of `figure` (made if new), marked
    /// against `goal` when `met` says whether it is met.
    pub(crate) fn set(
        &mut self,
        figure: &str,
        goal: &str,
        target: &str,
        text: String,
        met: Option<bool>,
    ) {
        let at = self.rows.iter().position(|row| row.0 == figure);
        let at = at.unwrap_or_else(|| {
            self.rows.push((figure.into(), goal.into(), Cells::new()));
            self.rows.len() - 1
        });
        self.rows[at].2.insert(target.to_owned(), (text, met));
    }

    /// A figure without a goal.
    pub(crate) fn info(&mut self, figure: &str, target: &str, text: String) {
        self.set(figure, "", target, text, None);
    }

    /// The table in Markdown (the columns of `targets` that have a figure), the
    /// notes, and the goals missed by the demo.
    pub(crate) fn figures(&self, targets: &[&str]) -> String {
        let used = |t: &&&str| self.rows.iter().any(|row| row.2.contains_key(**t));
        let columns: Vec<&str> = targets.iter().filter(used).copied().collect();
        let heads: String = columns.iter().map(|c| format!(" {c} |")).collect();
        let rules = " --- |".repeat(columns.len());
        let mut out = format!("| figure | goal |{heads}\n| --- | --- |{rules}\n");
        let mut misses = Vec::new();
        for (figure, goal, cells) in &self.rows {
            let _ = write!(out, "| {figure} | {goal} |");
            for column in &columns {
                let _ = match cells.get(*column) {
                    Some((text, Some(true))) => write!(out, " {text} (met) |"),
                    Some((text, Some(false))) => write!(out, " {text} (**missed**) |"),
                    Some((text, None)) => write!(out, " {text} |"),
                    None => write!(out, " – |"),
                };
            }
            out.push('\n');
            for (target, (text, met)) in cells {
                if *met == Some(false) && !target.starts_with("baseline") {
                    misses.push(format!("{figure} ({target}): {text} against {goal}"));
                }
            }
        }
        if !self.notes.is_empty() {
            out = out + "\n- " + &self.notes.join("\n- ") + "\n";
        }
        if misses.is_empty() {
            return out + "\nEvery goal met by the demo (debug and release).\n";
        }
        let missed = "Goals missed by the demo (the baseline columns are for comparison)";
        out + "\n" + missed + ":\n\n- " + &misses.join("\n- ") + "\n"
    }
}

/// Durations, to the microsecond, for their percentiles.
#[derive(Debug, Clone)]
pub(crate) struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        // 1 µs to an hour, to 3 significant figures.
        Self(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"))
    }
}

impl Latencies {
    pub(crate) fn record(&mut self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.0.add(&other.0).expect("histograms of the same bounds");
    }

    pub(crate) fn len(&self) -> usize {
        usize::try_from(self.0.len()).unwrap_or(usize::MAX)
    }

    /// The `p`-th percentile (0–100; 100 is the largest).
    pub(crate) fn at(&self, p: f64) -> Duration {
        Duration::from_micros(self.0.value_at_percentile(p))
    }

    /// [`Self::at`] in milliseconds; `p` 50 and 100 for `median, max`.
    pub(crate) fn ms(&self, p: f64) -> String {
        ms(self.at(p))
    }
}

/// Milliseconds with one decimal.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The median of a few values (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n => (sorted[(n - 1) / 2] + sorted[n / 2]) / 2.0,
    }
}

/// A whole number with thousands separators: 12,345.
pub(crate) fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let groups = digits.as_bytes().rchunks(3).rev();
    let groups: Vec<&str> = groups.filter_map(|g| std::str::from_utf8(g).ok()).collect();
    groups.join(",")
}

/// `text` if `cond`, else nothing.
pub(crate) fn when<T: Default>(cond: bool, text: T) -> T {
    if cond {
        text
    } else {
        T::default()
    }
}
