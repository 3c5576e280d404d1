//! What the failure server shows: a build that failed, or an app that exited.
//!
//! One HTML fragment serves both places: the overlay that every open tab shows
//! above its page (the library's `overlay` event) and the body of the error page
//! that a page load gets.

use std::fmt::Write as _;
use std::path::Path;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::app::Ended;
use crate::build::Failure;
use crate::diagnostic::{self, ansi, location};
use crate::editor::Editor;
use crate::panic::{last_panic, strip_ansi};

/// The report's styles (`report.css`), scoped to `.aar-report`.
const STYLE: &str = include_str!("report.css");

/// How many of stderr's last lines the report of an exited app shows.
const STDERR_LINES: usize = 40;

/// A failure, ready to serve.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The heading and page title, e.g. "Build failed".
    title: &'static str,
    /// One line for the terminal and for requests that are not page loads, e.g.
    /// "the build failed: 2 errors, 1 warning".
    pub(crate) summary: String,
    /// The HTML fragment: styles and content.
    pub(crate) fragment: String,
}

/// The report's last line when no app serves.
const FOOT: &str = "Fix it and save: every tab reloads once the app runs again.";

impl Report {
    /// The report of a build that produced nothing to run. Errors come first, then
    /// the warnings, folded, under their count. `root` is the workspace root;
    /// `live`: the last good app still serves under the report.
    pub(crate) fn build_failed(
        failure: &Failure,
        root: &Path,
        editor: &Editor,
        live: bool,
    ) -> Self {
        let (summary, content) = match failure {
            Failure::Compile { errors, warnings } => {
                let count = counts(errors.len(), warnings.len());
                let content = html! {
                    @for error in errors { (diagnostic::render(error, root, editor)) }
                    @if !warnings.is_empty() {
                        details.aar-warnings {
                            summary { (plural(warnings.len(), "warning")) }
                            @for warning in warnings { (diagnostic::render(warning, root, editor)) }
                        }
                    }
                };
                (count, content)
            }
            Failure::Cargo(status) => (
                format!("cargo build failed ({status})"),
                html! { p { "cargo reported no compiler error: its own message is in the terminal." } },
            ),
            Failure::Target(why) => (why.clone(), html! { p { (why) } }),
        };
        let foot = if live {
            "The page below is the last good build, still serving. Fix it and save: every tab updates once it builds."
        } else {
            FOOT
        };
        Self::new(
            "Build failed",
            format!("the build failed: {summary}"),
            &summary,
            content,
            foot,
        )
    }

    /// The report of an app that exited without being asked to: its exit status,
    /// its panic (the message, and where, as an editor link: the library's record
    /// through the channel, else read back from stderr) and the last lines of its
    /// stderr.
    pub(crate) fn exited(ended: &Ended, root: &Path, editor: &Editor) -> Self {
        let stderr = &ended.stderr;
        let panic = ended
            .news
            .panic
            .clone()
            .or_else(|| last_panic(&strip_ansi(stderr)));
        let tail = last_lines(stderr, STDERR_LINES);
        let content = html! {
            @if let Some(panic) = &panic {
                section.aar-diagnostic {
                    p.aar-where {
                        span { "thread '" (panic.thread) "' panicked at" }
                        (location(editor, root, &panic.file, panic.line, panic.col))
                    }
                    pre.aar-message { (panic.message) }
                }
            }
            @if !tail.trim().is_empty() {
                details.aar-stderr open[panic.is_none()] {
                    summary { "The last lines it wrote to stderr" }
                    pre { (ansi(tail.trim_end())) }
                }
            }
        };
        let status = ended.status.to_string();
        let summary = match &panic {
            Some(panic) => format!(
                "the app panicked at {}:{}:{} ({status})",
                panic.file, panic.line, panic.col
            ),
            None => format!("the app exited ({status})"),
        };
        Self::new("The app exited", summary, &status, content, FOOT)
    }

    fn new(
        title: &'static str,
        summary: String,
        detail: &str,
        content: Markup,
        foot: &str,
    ) -> Self {
        let fragment = html! {
            style { (PreEscaped(STYLE)) }
            div.aar-report {
                h1 { (title) small { (detail) } }
                (content)
                p.aar-foot { (foot) }
            }
        };
        Self {
            title,
            summary,
            fragment: fragment.into_string(),
        }
    }

    /// The error page a page load gets: the fragment as its body. The library's
    /// layer adds the client script.
    pub(crate) fn page(&self) -> String {
        html! {
            (DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { (self.title) " · axum-autoreload" } }
                body style="margin:0;background:#1e1e1e" {
                    div style="padding:16px 20px" { (PreEscaped(&self.fragment)) }
                }
            }
        }
        .into_string()
    }
}

/// "1 error, 3 warnings"; "2 errors".
fn counts(errors: usize, warnings: usize) -> String {
    let mut text = plural(errors, "error");
    if warnings > 0 {
        let _ = write!(text, ", {}", plural(warnings, "warning"));
    }
    text
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// The last `count` (at least 1) lines of `text`.
fn last_lines(text: &str, count: usize) -> &str {
    let body = text.trim_end_matches('\n');
    match body.rmatch_indices('\n').nth(count.saturating_sub(1)) {
        Some((at, _)) => &text[at + 1..],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;
    use crate::channel::News;
    use crate::panic::Panic;

    fn ended(code: i32, stderr: &str, panic: Option<Panic>) -> Ended {
        Ended {
            status: ExitStatus::from_raw(code << 8),
            stderr: stderr.to_owned(),
            news: News {
                panic,
                shutdown: None,
            },
        }
    }

    #[test]
    fn the_panic_the_library_recorded_comes_before_stderr() {
        let recorded = Panic {
            thread: "main".to_owned(),
            file: "src/main.rs".to_owned(),
            line: 3,
            col: 7,
            message: "recorded".to_owned(),
        };
        let stderr = "thread 'main' panicked at src/other.rs:1:1:\nparsed\n";
        let report = Report::exited(
            &ended(101, stderr, Some(recorded)),
            Path::new("/app"),
            &Editor::None,
        );
        assert_eq!(
            report.summary,
            "the app panicked at src/main.rs:3:7 (exit status: 101)"
        );
        assert!(report.fragment.contains("recorded"), "{}", report.fragment);
    }

    #[test]
    fn counts_read_as_english() {
        assert_eq!(counts(1, 0), "1 error");
        assert_eq!(counts(2, 1), "2 errors, 1 warning");
        assert_eq!(counts(1, 3), "1 error, 3 warnings");
    }

    #[test]
    fn last_lines_of_stderr() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("a\nb\n", 5), "a\nb\n");
        assert_eq!(last_lines("", 5), "");
    }

    #[test]
    fn errors_come_first_then_the_warnings_folded() {
        use crate::diagnostic::fixtures;
        let failure = Failure::Compile {
            errors: vec![fixtures::e0425()],
            warnings: vec![fixtures::unused_variable()],
        };
        let report = Report::build_failed(&failure, Path::new("/app"), &Editor::default(), true);
        assert_eq!(report.summary, "the build failed: 1 error, 1 warning");
        let html = &report.fragment;
        let error = html.find("E0425").expect("the error");
        let warnings = html
            .find("<details class=\"aar-warnings\"")
            .expect("the warnings");
        assert!(error < warnings, "{html}");
        assert!(html.contains("<summary>1 warning</summary>"), "{html}");
        assert!(
            html.contains("the last good build, still serving"),
            "{html}"
        );
    }

    #[test]
    fn a_panic_shows_its_message_and_location_escaped() {
        let stderr = "INFO listening\nthread 'main' (7) panicked at src/main.rs:9:5:\nno <config> & no luck\n\
                      note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        let report = Report::exited(
            &ended(101, stderr, None),
            Path::new("/app"),
            &Editor::default(),
        );
        assert_eq!(
            report.summary,
            "the app panicked at src/main.rs:9:5 (exit status: 101)"
        );
        let html = report.page();
        assert!(html.contains("no &lt;config&gt; &amp; no luck"), "{html}");
        assert!(
            html.contains(r#"href="vscode://file//app/src/main.rs:9:5""#),
            "{html}"
        );
        assert!(html.contains("exit status: 101"), "{html}");
    }

    #[test]
    fn an_exit_without_a_panic_shows_stderr() {
        let stderr = "Error: cannot listen on 127.0.0.1:8080: address in use\n";
        let report = Report::exited(&ended(1, stderr, None), Path::new("/app"), &Editor::None);
        assert_eq!(report.summary, "the app exited (exit status: 1)");
        assert!(
            report
                .fragment
                .contains("<details class=\"aar-stderr\" open>"),
            "{}",
            report.fragment
        );
        assert!(report.fragment.contains("address in use"));
    }
}
