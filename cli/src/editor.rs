//! Links that open a source location in the developer's editor.
//!
//! Editors register URL schemes with the operating system (`vscode://file/…`,
//! `zed://file/…`, `idea://open?…`); a link in the browser then opens the file at
//! a line and column. [`Editor`] is either a preset or a template of the user's.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// The environment variable that chooses the editor when `--editor` is not given.
pub(crate) const EDITOR_ENV: &str = "AXUM_AUTORELOAD_EDITOR";

/// The presets, by name: each a template with `{file}` (absolute path), `{line}`
/// and `{col}` (1-based).
const PRESETS: &[(&str, &str)] = &[
    ("vscode", "vscode://file/{file}:{line}:{col}"),
    ("vscodium", "vscodium://file/{file}:{line}:{col}"),
    ("cursor", "cursor://file/{file}:{line}:{col}"),
    ("zed", "zed://file/{file}:{line}:{col}"),
    ("idea", "idea://open?file={file}&line={line}&column={col}"),
    (
        "sublime",
        "subl://open?url=file://{file}&line={line}&column={col}",
    ),
];

/// What a path may not carry as is inside these URLs: controls, and the space and
/// characters that end a path or a query value, or start an escape.
const PATH: &AsciiSet = &CONTROLS.add(b' ').add(b'#').add(b'%').add(b'&').add(b'?');

/// How `file:line:col` links open the editor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Editor {
    /// A URL template with `{file}`, `{line}` and `{col}`.
    Template(String),
    /// No links: locations show as text.
    None,
}

impl Default for Editor {
    fn default() -> Self {
        Self::Template(PRESETS[0].1.to_owned())
    }
}

/// Why an `--editor` value was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is neither a preset ({presets}, none) nor a URL template with {{file}} \
     (and {{line}}, {{col}}), e.g. \"myeditor://open?path={{file}}&line={{line}}\"",
    presets = preset_names()
)]
pub(crate) struct UnknownEditor(String);

fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Editor {
    type Err = UnknownEditor;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("none") {
            return Ok(Self::None);
        }
        if let Some((_, template)) = PRESETS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(value))
        {
            return Ok(Self::Template((*template).to_owned()));
        }
        if value.contains("{file}") {
            return Ok(Self::Template(value.to_owned()));
        }
        Err(UnknownEditor(value.to_owned()))
    }
}

impl fmt::Display for Editor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Template(template) => f.write_str(template),
            Self::None => f.write_str("none"),
        }
    }
}

impl Editor {
    /// The link that opens `file` (absolute) at `line` and `col` (1-based), or
    /// `None` when links are off.
    pub(crate) fn link(&self, file: &Path, line: usize, col: usize) -> Option<String> {
        let Self::Template(template) = self else {
            return None;
        };
        let file = utf8_percent_encode(&file.to_string_lossy(), PATH).to_string();
        // The file last: a path that holds `{line}` or `{col}` stays as it is.
        Some(
            template
                .replace("{line}", &line.to_string())
                .replace("{col}", &col.to_string())
                .replace("{file}", &file),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(editor: &str, file: &str) -> Option<String> {
        let editor: Editor = editor.parse().expect("an editor");
        editor.link(Path::new(file), 12, 5)
    }

    #[test]
    fn presets_make_their_editors_links() {
        let file = "/home/dev/app/src/main.rs";
        let cases = [
            ("vscode", "vscode://file//home/dev/app/src/main.rs:12:5"),
            ("VSCodium", "vscodium://file//home/dev/app/src/main.rs:12:5"),
            ("cursor", "cursor://file//home/dev/app/src/main.rs:12:5"),
            ("zed", "zed://file//home/dev/app/src/main.rs:12:5"),
            (
                "idea",
                "idea://open?file=/home/dev/app/src/main.rs&line=12&column=5",
            ),
            (
                "sublime",
                "subl://open?url=file:///home/dev/app/src/main.rs&line=12&column=5",
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(link(name, file).as_deref(), Some(expected), "{name}");
        }
        assert_eq!(
            Editor::default().link(Path::new(file), 12, 5),
            link("vscode", file)
        );
        assert_eq!(link("none", file), None);
    }

    #[test]
    fn custom_templates_and_awkward_paths() {
        assert_eq!(
            link("vscode", "/src/{line}/{col}.rs").as_deref(),
            Some("vscode://file//src/{line}/{col}.rs:12:5"),
            "a path's own braces are not template fields"
        );
        assert_eq!(
            link("nvim://open?f={file}&l={line}", "/a b/#x?.rs").as_deref(),
            Some("nvim://open?f=/a%20b/%23x%3F.rs&l=12")
        );
        let refused = "nano".parse::<Editor>().expect_err("not an editor");
        assert!(
            refused.to_string().contains("vscode, vscodium"),
            "{refused}"
        );
    }
}
