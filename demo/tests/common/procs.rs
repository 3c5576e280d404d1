//! Processes from /proc, for the tests and the benchmark harness that start trees of
//! them (watchexec → cargo → the demo) and must find and stop every one.

use std::collections::HashMap;
use std::fs;

use nix::unistd::Pid;

/// Every living descendant of `root`, with its process group, read from /proc.
pub(crate) fn descendants(root: Pid) -> Vec<(Pid, Pid)> {
    let mut children: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(process) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        let Some(after_comm) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = after_comm.split_whitespace().collect();
        if let (Some(Ok(parent)), Some(Ok(group))) = (
            fields.get(1).map(|s| s.parse::<i32>()),
            fields.get(2).map(|s| s.parse::<i32>()),
        ) {
            children.entry(parent).or_default().push((process, group));
        }
    }
    let mut found = Vec::new();
    let mut stack = vec![root.as_raw()];
    while let Some(parent) = stack.pop() {
        for &(process, group) in children.get(&parent).into_iter().flatten() {
            found.push((Pid::from_raw(process), Pid::from_raw(group)));
            stack.push(process);
        }
    }
    found
}
