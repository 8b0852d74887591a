//! Diagnostics for people, in the style of rustc.

use super::Report;
use super::source::Lines;

/// Renders every violation as
///
/// ```text
/// error[forbidden-import]: import of `os` is not allowed
///  --> strategy.py:3:8
///   |
/// 3 | import os
///   |        ^^
///   |
///   = help: import only allowed modules: ...
/// ```
///
/// followed by a summary line. Plain text, no colours. An empty report renders as "".
pub fn render_human(report: &Report, source: &str, filename: &str) -> String {
    // Positions count from after a byte order mark, as the validator's do.
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    let lines = Lines::new(source);
    let width = report
        .violations
        .iter()
        .map(|v| v.line.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(width);
    let mut out = String::new();
    for v in &report.violations {
        out.push_str(&format!("error[{}]: {}\n", v.rule, v.message));
        out.push_str(&format!("{pad}--> {filename}:{}:{}\n", v.line, v.col));
        out.push_str(&format!("{pad} |\n"));
        if let Some(text) = lines.line(v.line) {
            out.push_str(&format!("{:>width$} | {}\n", v.line, text));
            let skip = usize::try_from(v.col.saturating_sub(1)).unwrap_or(0);
            let lead: String = text
                .chars()
                .take(skip)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let rest = text.chars().count().saturating_sub(skip);
            let carets = v
                .text
                .trim_end_matches("...")
                .chars()
                .count()
                .clamp(1, rest.max(1));
            out.push_str(&format!("{pad} | {lead}{}\n", "^".repeat(carets)));
        }
        out.push_str(&format!("{pad} |\n"));
        out.push_str(&format!("{pad} = help: {}\n\n", v.hint));
    }
    match report.violations.len() {
        0 => {}
        1 => out.push_str("error: rejected because of 1 violation; nothing was run\n"),
        n => out.push_str(&format!(
            "error: rejected because of {n} violations; nothing was run\n"
        )),
    }
    out
}
