//! Temporary directories for tests: a leaf module, so that every other piece of
//! the plumbing can use it.

/// A new temporary directory named `{prefix}…`, removed when dropped.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("creating a temporary directory")
}
