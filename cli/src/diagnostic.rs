//! One compiler diagnostic as HTML: rustc's rendered text with its colours, the
//! error code linked to its explanation, the primary span as an editor link.

use std::path::Path;

use cargo_metadata::diagnostic::Diagnostic;
use maud::{html, Markup, PreEscaped};

use crate::editor::Editor;
use crate::panic::strip_ansi;

/// The index of rustc's error code explanations; `E0425.html` and so on.
const ERROR_CODES: &str = "https://doc.rust-lang.org/error_codes/";

/// The index of Clippy's lints; `#lint_name` and so on.
const CLIPPY_LINTS: &str = "https://rust-lang.github.io/rust-clippy/master/index.html#";

/// Where to read about a diagnostic's code: rustc's explanation of an error code
/// (`E` and four digits), Clippy's page of a `clippy::` lint; `None` for others.
pub(crate) fn code_url(code: &str) -> Option<String> {
    let is_error_code =
        code.len() == 5 && code.starts_with('E') && code[1..].bytes().all(|b| b.is_ascii_digit());
    if is_error_code {
        Some(format!("{ERROR_CODES}{code}.html"))
    } else {
        code.strip_prefix("clippy::")
            .map(|lint| format!("{CLIPPY_LINTS}{lint}"))
    }
}

/// `file:line:col` as a link that opens the editor there (plain text with
/// [`Editor::None`]). `file` is as rustc printed it; relative paths start at `root`,
/// the workspace root.
pub(crate) fn location(
    editor: &Editor,
    root: &Path,
    file: &str,
    line: usize,
    col: usize,
) -> Markup {
    let label = format!("{file}:{line}:{col}");
    match editor.link(&root.join(file), line, col) {
        Some(href) => html! {
            a.aar-location href=(href) title="Open in your editor" { (label) }
        },
        None => html! { span.aar-location { (label) } },
    }
}

/// Text with ANSI colours as HTML (`<span style=…>`), every `<`, `>` and `&` of
/// the text escaped by ansi-to-html; escaped plain text if the colours cannot be
/// read.
pub(crate) fn ansi(text: &str) -> Markup {
    match ansi_to_html::convert(text) {
        Ok(converted) => PreEscaped(converted),
        Err(_) => html! { (strip_ansi(text)) },
    }
}

/// One diagnostic: its code and location above rustc's rendered text.
pub(crate) fn render(diagnostic: &Diagnostic, root: &Path, editor: &Editor) -> Markup {
    let span = diagnostic
        .spans
        .iter()
        .find(|span| span.is_primary)
        .or_else(|| diagnostic.spans.first());
    let code = diagnostic.code.as_ref().map(|code| code.code.as_str());
    // Always there with `--message-format=json-diagnostic-rendered-ansi`.
    let rendered = diagnostic
        .rendered
        .as_deref()
        .unwrap_or(&diagnostic.message);
    html! {
        section.aar-diagnostic {
            p.aar-where {
                @if let Some(code) = code {
                    @match code_url(code) {
                        Some(url) => a.aar-code href=(url) title="What this error means" { (code) },
                        None => span.aar-code { (code) },
                    }
                    " "
                }
                @if let Some(span) = span {
                    (location(editor, root, &span.file_name, span.line_start, span.column_start))
                }
            }
            pre.aar-rendered { (ansi(rendered.trim_end())) }
        }
    }
}

/// Diagnostics as rustc reports them, for tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use cargo_metadata::diagnostic::Diagnostic;

    /// An error as rustc 1.95 reports it, with its colours.
    pub(crate) fn e0425() -> Diagnostic {
        from_json(
            r#"{"rendered":"\u001b[0m\u001b[1m\u001b[38;5;9merror[E0425]\u001b[0m\u001b[0m\u001b[1m: cannot find value `x` in this scope\u001b[0m\n \u001b[0m\u001b[0m\u001b[1m\u001b[38;5;12m--> \u001b[0m\u001b[0msrc/main.rs:3:13\n  |\n3 |     let y = x < 1 && true;\n","$message_type":"diagnostic","children":[],"code":{"code":"E0425","explanation":null},"level":"error","message":"cannot find value `x` in this scope","spans":[{"byte_end":40,"byte_start":39,"column_end":14,"column_start":13,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":null,"line_end":3,"line_start":3,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}]}"#,
        )
    }

    fn from_json(json: &str) -> Diagnostic {
        let line = format!(
            r#"{{"reason":"compiler-message","package_id":"path+file:///a#0.1.0","manifest_path":"/a/Cargo.toml","target":{{"kind":["bin"],"crate_types":["bin"],"name":"a","src_path":"/a/src/main.rs","edition":"2021","doc":true,"doctest":false,"test":true}},"message":{json}}}"#
        );
        match cargo_metadata::Message::parse_stream(line.as_bytes()).next() {
            Some(Ok(cargo_metadata::Message::CompilerMessage(message))) => message.message,
            other => panic!("not a compiler message: {other:?}"),
        }
    }

    /// A warning as rustc 1.95 reports it, without colours.
    pub(crate) fn unused_variable() -> Diagnostic {
        from_json(
            r#"{"rendered":"warning: unused variable: `y`\n","$message_type":"diagnostic","children":[],"code":{"code":"unused_variables","explanation":null},"level":"warning","message":"unused variable: `y`","spans":[{"byte_end":20,"byte_start":19,"column_end":10,"column_start":9,"expansion":null,"file_name":"src/main.rs","is_primary":true,"label":null,"line_end":2,"line_start":2,"suggested_replacement":null,"suggestion_applicability":null,"text":[]}]}"#,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::e0425;
    use super::*;

    #[test]
    fn error_codes_link_to_their_explanation() {
        assert_eq!(
            code_url("E0425").as_deref(),
            Some("https://doc.rust-lang.org/error_codes/E0425.html")
        );
        assert_eq!(
            code_url("clippy::needless_return").as_deref(),
            Some("https://rust-lang.github.io/rust-clippy/master/index.html#needless_return")
        );
        assert_eq!(code_url("unused_variables"), None);
        assert_eq!(code_url("E04x5"), None);
    }

    #[test]
    fn a_diagnostic_has_its_code_location_and_escaped_coloured_text() {
        let html = render(&e0425(), Path::new("/work/app"), &Editor::default()).into_string();
        assert!(
            html.contains(
                r#"<a class="aar-code" href="https://doc.rust-lang.org/error_codes/E0425.html""#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"href="vscode://file//work/app/src/main.rs:3:13""#),
            "{html}"
        );
        assert!(html.contains(">src/main.rs:3:13</a>"), "{html}");
        // rustc's text is escaped: `x < 1 && true` cannot open a tag.
        assert!(html.contains("x &lt; 1 &amp;&amp; true"), "{html}");
        assert!(!html.contains('\u{1b}'), "no raw escape sequences: {html}");
        assert!(html.contains("<b>"), "bold kept: {html}");
        let plain = render(&e0425(), Path::new("/work/app"), &Editor::None).into_string();
        assert!(
            plain.contains(r#"<span class="aar-location">src/main.rs:3:13</span>"#),
            "{plain}"
        );
    }
}
