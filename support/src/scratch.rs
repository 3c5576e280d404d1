//! Temporary directories and scratch copies of the workspace, for tests and
//! benchmarks that edit sources and rebuild.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root: the library, with the demo, the runner and this crate
/// beside it.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the support crate sits in the workspace")
        .to_owned()
}

/// A new temporary directory named `{prefix}…`, removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("creating a temporary directory")
}

/// Copies the workspace into `to`: everything `cargo build` needs (every member's
/// manifest and sources, the lock file, `static/`), without build output
/// (`target/`), git's `.git/` or the demo's database (`data/`).
pub fn copy_workspace(to: &Path) {
    copy_dir(&workspace(), to);
}

/// Copies the directory tree at `from` into `to`, leaving out directories named
/// `target`, `.git` and `data`.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|err| panic!("creating {}: {err}", to.display()));
    let entries =
        fs::read_dir(from).unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|err| panic!("reading {}: {err}", from.display()));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            if !matches!(entry.file_name().to_str(), Some("target" | ".git" | "data")) {
                copy_dir(&entry.path(), &target);
            }
        } else {
            fs::copy(entry.path(), &target).unwrap_or_else(|err| {
                panic!(
                    "copying {} to {}: {err}",
                    entry.path().display(),
                    target.display()
                )
            });
        }
    }
}

/// Replaces the one occurrence of `old` in the file at `path` with `new`; panics
/// when `old` is not there exactly once.
pub fn edit(path: &Path, old: &str, new: &str) {
    let text =
        fs::read_to_string(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    assert_eq!(
        text.matches(old).count(),
        1,
        "{old:?} once in {}",
        path.display()
    );
    fs::write(path, text.replacen(old, new, 1))
        .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
}
