//! The figures: a table with one column per target, printed and written to
//! BENCHMARKS.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// One figure of one target.
#[derive(Clone, Debug)]
pub(crate) struct Cell {
    pub(crate) text: String,
    /// Whether the goal is met; `None` where the figure has no goal.
    pub(crate) met: Option<bool>,
}

/// One line of the table: a figure, its goal, and a cell per target.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) figure: String,
    pub(crate) goal: String,
    pub(crate) cells: BTreeMap<String, Cell>,
}

/// Everything a run found.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) rows: Vec<Row>,
    pub(crate) notes: Vec<String>,
}

impl Report {
    /// Record `text` for `target` in the row for `figure`, made if new.
    pub(crate) fn set(
        &mut self,
        figure: &str,
        goal: &str,
        target: &str,
        text: String,
        met: Option<bool>,
    ) {
        let row = match self.rows.iter_mut().position(|row| row.figure == figure) {
            Some(at) => &mut self.rows[at],
            None => {
                self.rows.push(Row {
                    figure: figure.to_owned(),
                    goal: goal.to_owned(),
                    cells: BTreeMap::new(),
                });
                let last = self.rows.len() - 1;
                &mut self.rows[last]
            }
        };
        row.cells.insert(target.to_owned(), Cell { text, met });
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// The table in Markdown, with the columns of `targets` that have a figure.
    pub(crate) fn markdown(&self, targets: &[&str]) -> String {
        let columns: Vec<&str> = targets
            .iter()
            .copied()
            .filter(|t| self.rows.iter().any(|row| row.cells.contains_key(*t)))
            .collect();
        let mut out = String::new();
        let _ = write!(out, "| figure | goal |");
        for column in &columns {
            let _ = write!(out, " {column} |");
        }
        out.push('\n');
        out.push_str("| --- | --- |");
        for _ in &columns {
            out.push_str(" --- |");
        }
        out.push('\n');
        for row in &self.rows {
            let _ = write!(out, "| {} | {} |", row.figure, row.goal);
            for column in &columns {
                match row.cells.get(*column) {
                    Some(cell) => {
                        let mark = match cell.met {
                            Some(true) => " (met)",
                            Some(false) => " (**missed**)",
                            None => "",
                        };
                        let _ = write!(out, " {}{mark} |", cell.text);
                    }
                    None => out.push_str(" – |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// The goals missed by the demo (debug or release), one line each.
    pub(crate) fn misses(&self) -> Vec<String> {
        let mut misses = Vec::new();
        for row in &self.rows {
            for (target, cell) in &row.cells {
                if cell.met == Some(false) && !target.starts_with("baseline") {
                    misses.push(format!(
                        "{} ({target}): {} against {}",
                        row.figure, cell.text, row.goal
                    ));
                }
            }
        }
        misses
    }
}

/// Milliseconds with one decimal.
pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The `p`-th percentile (0–100) of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The median of unsorted values.
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// A whole number with thousands separators: 12,345.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
