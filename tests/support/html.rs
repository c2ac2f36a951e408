//! Comparing HTML documents the way the parity tests do: each document becomes a list of lines
//! (one per start tag with its attributes sorted, end tag and text run; CSRF token values
//! masked; whitespace-only text between elements dropped), and two lists are shown as a diff.
//!
//! The normalizer is the one `tests/template_parity/render_legacy.py` defines (Python's
//! `html.parser`, the legacy venv's interpreter), so both parity suites read HTML alike.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::{legacy, repo_root};

/// Reads a JSON list of documents on stdin, prints a JSON list of normalized line lists.
const NORMALIZE_SCRIPT: &str = r#"
import json, sys
sys.path.insert(0, sys.argv[1])
from render_legacy import normalize
docs = json.load(sys.stdin)
json.dump([normalize(doc) for doc in docs], sys.stdout, ensure_ascii=False)
"#;

/// Normalizes every document in one Python run (see the module doc for the line format).
pub fn normalize_all(documents: &[&str]) -> Vec<Vec<String>> {
    if documents.is_empty() {
        return Vec::new();
    }
    let python = legacy::venv().join("bin/python");
    let script_dir = repo_root().join("tests/template_parity");
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(NORMALIZE_SCRIPT)
        .arg(&script_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let input = serde_json::to_vec(documents).expect("documents serialize");
    // Write from a thread: Python may fill its stdout pipe before reading all of stdin.
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("python runs");
    writer
        .join()
        .expect("writer thread")
        .expect("python reads its input");
    assert!(
        output.status.success(),
        "the HTML normalizer failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Vec<String>> = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the HTML normalizer printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(lines.len(), documents.len(), "one result per document");
    lines
}

/// A unified-style diff of two line lists (LCS; pages are a few hundred lines), with three
/// lines of context around each change.
pub fn diff(django: &[String], ours: &[String]) -> String {
    let (n, m) = (django.len(), ours.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if django[i] == ours[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && django[i] == ours[j] {
            ops.push((' ', &django[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', &django[i]));
            i += 1;
        } else {
            ops.push(('+', &ours[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::from("--- django\n+++ ferrochat\n");
    let mut last_shown: Option<usize> = None;
    for (k, (sign, line)) in ops.iter().enumerate() {
        let near = changed.iter().any(|&c| k + 3 >= c && k <= c + 3);
        if !near {
            continue;
        }
        if last_shown.is_some_and(|l| k > l + 1) {
            out.push_str("  ...\n");
        }
        out.push_str(&format!("{sign} {line}\n"));
        last_shown = Some(k);
    }
    out
}

/// Writes both documents of a case to `<CARGO_TARGET_TMPDIR>/<suite>/<id>.{django,ferrochat}.html`
/// for a closer look (`id` may name a subdirectory: `run/case`); returns the two paths. A write
/// failure is reported, not fatal.
pub fn save_pages(suite: &str, id: &str, django: &str, ours: &str) -> (PathBuf, PathBuf) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(suite);
    let django_file = dir.join(format!("{id}.django.html"));
    let ours_file = dir.join(format!("{id}.ferrochat.html"));
    let parent = django_file.parent().unwrap_or(&dir);
    let written = std::fs::create_dir_all(parent)
        .and_then(|()| std::fs::write(&django_file, django))
        .and_then(|()| std::fs::write(&ours_file, ours));
    if let Err(e) = written {
        eprintln!("cannot save the pages of {id} in {}: {e}", dir.display());
    }
    (django_file, ours_file)
}
