//! The runner's own name for the app's binary, a hard link (or a copy): the path
//! cargo writes stays free for the next build (a running executable cannot be
//! written, `ETXTBSY`), and a build that made the same bytes is told from one that
//! changed them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The copies a runner made, in `<the binary's directory>/.axum-autoreload/`, named
/// `<binary>-<runner's pid>-<n>` so that two runners never share one.
#[derive(Debug, Default)]
pub(crate) struct Copies {
    made: u32,
}

impl Copies {
    /// A new link to (or copy of) `built`, ready to run; `None` when `running` (the
    /// one the app runs now) has the same bytes. Blocking: call it on a blocking
    /// thread.
    ///
    /// # Errors
    ///
    /// When `built` cannot be read or neither a link nor a copy can be made.
    pub(crate) fn stage(
        &mut self,
        built: &Path,
        running: Option<&Path>,
    ) -> io::Result<Option<PathBuf>> {
        if let Some(running) = running {
            if same_bytes(built, running)? {
                return Ok(None);
            }
        }
        let name = built
            .file_name()
            .ok_or_else(|| io::Error::other("the binary's path has no file name"))?;
        let dir = built
            .parent()
            .unwrap_or_else(|| Path::new("."))
            // Hidden: no cargo target is named so, and the runner's own binary
            // is `axum-autoreload` in the same directory when both are built.
            .join(".axum-autoreload");
        fs::create_dir_all(&dir)?;
        if self.made == 0 {
            // Only earlier runners leave orphans: once is enough.
            remove_orphans(&dir, &name.to_string_lossy());
        }
        self.made += 1;
        let copy = dir.join(format!(
            "{}-{}-{}",
            name.to_string_lossy(),
            std::process::id(),
            self.made
        ));
        // A hard link: cargo and the linkers replace the binary (unlink, then
        // write anew) rather than write into it, so the running inode stays as
        // it is. A copy where no link can be made (another file system).
        if fs::hard_link(built, &copy).is_err() {
            // Written under another name, then renamed: never run half-written.
            let partial = copy.with_extension("partial");
            fs::copy(built, &partial)?;
            fs::rename(&partial, &copy)?;
        }
        Ok(Some(copy))
    }
}

/// Whether `built` and `running` hold the same bytes: the same file, or the same
/// length and content. A running copy that cannot be read (removed by `cargo
/// clean`, say) is not the same.
fn same_bytes(built: &Path, running: &Path) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let new = fs::metadata(built)?;
    let Ok(old) = fs::metadata(running) else {
        return Ok(false);
    };
    if (new.dev(), new.ino()) == (old.dev(), old.ino()) {
        return Ok(true);
    }
    if new.len() != old.len() {
        return Ok(false);
    }
    Ok(fs::read(built)? == fs::read(running).unwrap_or_default())
}

/// Remove the copies of `name` in `dir` left by runners that are gone (killed
/// with SIGKILL, say): `<name>-<pid>-<n>` whose pid no process has.
fn remove_orphans(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|file| file.strip_prefix(name)) else {
            continue;
        };
        let Some(pid) = copy_pid(rest) else {
            continue;
        };
        let gone = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH);
        if gone {
            remove(&entry.path());
        }
    }
}

/// The runner's pid in what follows a binary's name in one of its copies:
/// `-<pid>-<n>`, or `-<pid>-<n>.partial`; `None` for anything else (such as the
/// copies of another binary whose name starts with this one's).
fn copy_pid(rest: &str) -> Option<i32> {
    let rest = rest.strip_prefix('-')?;
    let rest = rest.strip_suffix(".partial").unwrap_or(rest);
    let (pid, n) = rest.split_once('-')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n))
        .then(|| pid.parse().ok())
        .flatten()
}

/// Remove a copy no process runs any more; a failure is only logged.
pub(crate) fn remove(copy: &Path) {
    if let Err(err) = fs::remove_file(copy) {
        tracing::debug!("cannot remove {}: {err}", copy.display());
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn only_this_binarys_copies_name_a_pid() {
        assert_eq!(copy_pid("-123-4"), Some(123));
        assert_eq!(copy_pid("-123-4.partial"), Some(123));
        // `app-2-77-1`, a copy of `app-2`, seen while cleaning up for `app`.
        assert_eq!(copy_pid("-2-77-1"), None);
        assert_eq!(copy_pid("-123"), None);
        assert_eq!(copy_pid("-x-1"), None);
        assert_eq!(copy_pid("123-4"), None);
    }

    #[test]
    fn a_running_copy_that_is_gone_is_not_the_same() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let built = dir.path().join("app");
        fs::write(&built, b"binary").expect("writing the binary");
        let gone = dir.path().join("gone");
        assert!(!same_bytes(&built, &gone).expect("no error for a missing copy"));
    }

    #[test]
    fn a_copy_runs_and_the_same_bytes_make_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let built = dir.path().join("app");
        fs::write(&built, b"#!/bin/sh\n").expect("write");
        fs::set_permissions(&built, fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut copies = Copies::default();
        let first = copies.stage(&built, None).expect("copied").expect("a copy");
        assert_ne!(first, built);
        assert_eq!(fs::read(&first).expect("read"), b"#!/bin/sh\n");
        assert_eq!(
            fs::metadata(&first).expect("stat").permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(copies.stage(&built, Some(&first)).expect("compared"), None);
        // As cargo replaces a binary: the old file goes, a new one comes.
        fs::remove_file(&built).expect("remove");
        fs::write(&built, b"#!/bin/sh\nexit 0\n").expect("write");
        fs::set_permissions(&built, fs::Permissions::from_mode(0o755)).expect("chmod");
        assert_eq!(
            fs::read(&first).expect("read"),
            b"#!/bin/sh\n",
            "the running one stays"
        );
        let second = copies
            .stage(&built, Some(&first))
            .expect("copied")
            .expect("a copy");
        assert_ne!(second, first);
        remove(&first);
        assert!(!first.exists());
        // Rebuilt to the same bytes: nothing to swap.
        fs::remove_file(&built).expect("remove");
        fs::write(&built, b"#!/bin/sh\nexit 0\n").expect("write");
        assert_eq!(copies.stage(&built, Some(&second)).expect("compared"), None);
        // A copy left by a runner that is gone goes with the first stage of the
        // next runner; one of a runner that runs stays.
        let copies_dir = second.parent().expect("the copies' directory");
        let orphan = copies_dir.join(format!("app-{}-1", i32::MAX));
        let living = copies_dir.join("app-1-1");
        for file in [&orphan, &living] {
            fs::write(file, b"").expect("write");
        }
        Copies::default().stage(&built, None).expect("linked");
        assert!(!orphan.exists() && living.exists());
    }
}
