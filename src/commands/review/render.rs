//! Text and markdown renderings of a review. The markdown is a pull-request comment whose first
//! line, [`MARKER`], lets CI find and update its earlier comment instead of adding another.
//!
//! Release files, metrics and diffs come from the pull request. The markdown puts their values
//! in code spans and code blocks and escapes `<` elsewhere, so that they cannot add HTML, hide
//! the rest of the comment or close a block early.

use std::fmt::Write as _;

use super::Report;
use crate::compare::Verdict;
use crate::gates::Status;
use crate::metrics::MetricValue;
use crate::report::{Table, format_change, format_json_value};
use crate::review::{ChangeKind, Effect, FileReview, MetricsReview, ProblemEntry, Scope, Summary};

/// The first line of every markdown report.
pub const MARKER: &str = "<!-- mrel-review -->";

/// Diffs longer than this many lines are folded in a `<details>` block.
const FOLD_LINES: usize = 20;

/// Markdown diffs stop after this many lines, because a GitHub comment accepts at most 65,536
/// characters.
const MAX_DIFF_LINES: usize = 400;

pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(MARKER);
    out.push('\n');
    let _ = writeln!(out, "## mrel review: {}\n", headline(report));
    let _ = writeln!(
        out,
        "Release files changed from {} (merge base of {} and {}) to {} ({}).\n",
        code(short(&report.merge_base)),
        code(&report.base),
        code(&report.head),
        code(&report.head),
        code(short(&report.head_commit)),
    );
    for file in &report.files {
        markdown_file(&mut out, file);
    }
    out
}

pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "mrel review: {}", headline(report));
    let _ = writeln!(
        out,
        "from {} (merge base of {} and {}) to {} ({})",
        short(&report.merge_base),
        report.base,
        report.head,
        report.head,
        short(&report.head_commit),
    );
    for file in &report.files {
        out.push('\n');
        text_file(&mut out, file);
    }
    out
}

fn headline(report: &Report) -> String {
    let count = report.files.len();
    if count == 0 {
        return "no release file changed".to_owned();
    }
    let noun = if count == 1 { "file" } else { "files" };
    let failed = report.files.iter().filter(|file| !file.passed).count();
    if failed == 0 {
        format!("{count} release {noun} changed, all passed")
    } else {
        format!("{count} release {noun} changed, {failed} failed")
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn change_word(change: ChangeKind) -> &'static str {
    match change {
        ChangeKind::Added => "added",
        ChangeKind::Modified => "modified",
        ChangeKind::Removed => "removed",
    }
}

/// `model 1.0.0 → 1.1.0`, `model 1.1.0` for a new file, or just the model.
fn versions(file: &FileReview) -> String {
    let model = file.model.as_deref().unwrap_or("unknown model");
    match (&file.old_version, &file.new_version) {
        (Some(old), Some(new)) if old != new => format!("{model} {old} → {new}"),
        (_, Some(new)) => format!("{model} {new}"),
        (Some(old), None) if file.change == ChangeKind::Removed => format!("{model} {old}"),
        _ => model.to_owned(),
    }
}

fn verdict_word(file: &FileReview) -> &'static str {
    if file.change == ChangeKind::Removed {
        "removed"
    } else if file.passed {
        "passed"
    } else {
        "FAILED"
    }
}

/// Returns the lines that warn about a changed training command, which CI runs on release.
fn command_warning(summary: &Summary, quote: fn(&str) -> String) -> Vec<String> {
    let Some(change) = &summary.training_command else {
        return Vec::new();
    };
    match (&change.old, &change.new) {
        (None, Some(new)) => vec![
            "This release file declares a training command, which CI runs on release:".into(),
            format!("command: {}", quote(new)),
        ],
        (Some(old), None) => vec![
            "The training command was removed, so this model can no longer be trained by mrel:"
                .into(),
            format!("before: {}", quote(old)),
        ],
        (Some(old), Some(new)) => vec![
            "The training command changed, and CI runs the new one on release:".into(),
            format!("before: {}", quote(old)),
            format!("after: {}", quote(new)),
        ],
        (None, None) => Vec::new(),
    }
}

fn problem_line(problem: &ProblemEntry) -> String {
    let mut line = format!("line {}, column {}", problem.line, problem.column);
    if !problem.field.is_empty() {
        let _ = write!(line, ", field `{}`", problem.field);
    }
    let _ = write!(line, ": {}", problem.message);
    line
}

fn release_line(file: &FileReview) -> Option<String> {
    let check = file.release.as_ref()?;
    let latest = match &check.latest {
        Some(latest) => format!("the latest release is {latest}"),
        None => "this is the model's first release".to_owned(),
    };
    Some(if check.exists {
        format!("tag {} already exists; {latest}", check.tag)
    } else {
        format!("a release creates tag {}; {latest}", check.tag)
    })
}

/// Formats one line per change in the summary; `code` formats names and values.
fn summary_lines(summary: &Summary, code: fn(&str) -> String) -> Vec<String> {
    let value = |value: &Option<String>| value.as_deref().map_or_else(|| "—".to_owned(), code);
    let json = |value: &Option<serde_json::Value>| {
        value
            .as_ref()
            .map_or_else(|| "—".to_owned(), |value| code(&format_json_value(value)))
    };
    let mut lines = Vec::new();
    // A new file's model and version are in the heading already.
    let changes = [("model", &summary.model), ("version", &summary.version)];
    for (field, change) in changes {
        if let Some(change) = change.as_ref().filter(|change| change.old.is_some()) {
            lines.push(format!(
                "{field}: {} → {}",
                value(&change.old),
                value(&change.new)
            ));
        }
    }
    for setting in &summary.training {
        lines.push(format!(
            "{}: {} → {}",
            code(&setting.field),
            value(&setting.old),
            value(&setting.new)
        ));
    }
    for param in &summary.params {
        lines.push(format!(
            "param {}: {} → {}",
            code(&param.name),
            json(&param.old),
            json(&param.new)
        ));
    }
    for gate in &summary.gates {
        let effect = effect_word(gate.effect);
        let owner = match (gate.scope, &gate.stage) {
            (Scope::Promotion, Some(stage)) => format!("promotion gate of {}", code(stage)),
            (Scope::Monitor, _) => "monitor gate".to_owned(),
            _ => "gate".to_owned(),
        };
        lines.push(format!(
            "{owner} {} {} {effect}: {} → {}",
            code(&gate.metric),
            gate.check,
            value(&gate.old),
            value(&gate.new)
        ));
    }
    for soak in &summary.soak {
        lines.push(format!(
            "soak before {} {}: {} → {}",
            code(&soak.stage),
            effect_word(soak.effect),
            value(&soak.old),
            value(&soak.new)
        ));
    }
    if let Some(stages) = &summary.stages {
        let list = |stages: &[String]| {
            if stages.is_empty() {
                "none".to_owned()
            } else {
                code(&stages.join(", "))
            }
        };
        lines.push(format!(
            "stages: {} → {}",
            list(&stages.old),
            list(&stages.new)
        ));
    }
    if !summary.other.is_empty() {
        let fields: Vec<String> = summary.other.iter().map(|field| code(field)).collect();
        lines.push(format!("also changed: {}", fields.join(", ")));
    }
    lines
}

fn effect_word(effect: Effect) -> &'static str {
    match effect {
        Effect::Loosened => "loosened",
        Effect::Tightened => "tightened",
        Effect::Changed => "changed",
    }
}

fn metric_table(metrics: &MetricsReview, code: fn(&str) -> String) -> Table {
    let value = |value: &Option<MetricValue>| {
        value.as_ref().map_or_else(
            || "—".to_owned(),
            |value| format_json_value(&value.to_json()),
        )
    };
    let mut table =
        Table::new(&["metric", "old", "new", "change", "verdict", "gate"]).align_right(&[1, 2, 3]);
    for row in &metrics.rows {
        let verdict = match row.verdict {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::Unchanged => "unchanged",
            Verdict::Changed => "changed",
            Verdict::Added => "added",
            Verdict::Removed => "removed",
        };
        let gate = match row.gate {
            Some(Status::Passed) => "passed",
            Some(Status::Failed) => "FAILED",
            Some(Status::Skipped) => "skipped",
            None => "",
        };
        table.push(vec![
            code(&row.name),
            value(&row.old),
            value(&row.new),
            format_change(row.change, row.relative),
            verdict.to_owned(),
            gate.to_owned(),
        ]);
    }
    table
}

fn gate_table(metrics: &MetricsReview, code: fn(&str) -> String) -> Table {
    let mut table = Table::new(&["metric", "check", "limit", "value", "verdict"]).align_right(&[3]);
    for result in &metrics.gates {
        let verdict = match result.status {
            Status::Passed => "passed".to_owned(),
            Status::Failed => format!("FAILED: {}", result.reason),
            Status::Skipped => format!("skipped: {}", result.reason),
        };
        table.push(vec![
            code(&result.metric),
            result.check.clone(),
            result.limit.clone(),
            result
                .value
                .as_ref()
                .map_or_else(|| "—".to_owned(), format_json_value),
            verdict,
        ]);
    }
    table
}

fn metrics_heading(metrics: &MetricsReview, code: fn(&str) -> String) -> String {
    match &metrics.compared_with {
        Some(tag) => format!(
            "from {}, compared with {}",
            code(&metrics.source),
            code(tag)
        ),
        None => format!(
            "from {}, with no release to compare with",
            code(&metrics.source)
        ),
    }
}

fn markdown_file(out: &mut String, file: &FileReview) {
    let _ = writeln!(
        out,
        "### {} ({}): {}, {}\n",
        code(&file.path),
        change_word(file.change),
        escape(&versions(file)),
        verdict_word(file)
    );

    if let Some(summary) = &file.summary {
        let warning = command_warning(summary, code);
        if !warning.is_empty() {
            out.push_str("> [!WARNING]\n");
            for line in warning {
                let _ = writeln!(out, "> {line}  ");
            }
            out.push('\n');
        }
    }

    if file.change != ChangeKind::Removed {
        if file.problems.is_empty() {
            out.push_str("**Validation:** valid\n\n");
        } else {
            let count = file.problems.len();
            let noun = if count == 1 { "problem" } else { "problems" };
            let _ = writeln!(out, "**Validation:** {count} {noun}\n");
            for problem in &file.problems {
                let _ = writeln!(out, "- {}", escape(&problem_line(problem)));
            }
            out.push('\n');
        }
    }

    if let Some(line) = release_line(file) {
        let _ = writeln!(out, "**Release:** {}\n", escape(&line));
        if let Some(check) = &file.release {
            for problem in &check.problems {
                let _ = writeln!(out, "- {}", escape(problem));
            }
            if !check.problems.is_empty() {
                out.push('\n');
            }
        }
    }

    if let Some(summary) = &file.summary {
        let lines = summary_lines(summary, code);
        if lines.is_empty() {
            out.push_str("**Changes:** none beyond formatting and comments\n\n");
        } else {
            out.push_str("**Changes:**\n\n");
            for line in lines {
                let _ = writeln!(out, "- {line}");
            }
            out.push('\n');
        }
    }

    if let Some(metrics) = &file.metrics {
        let _ = writeln!(out, "**Metrics** {}:\n", metrics_heading(metrics, code));
        if let Some(error) = &metrics.error {
            let _ = writeln!(out, "- {}\n", escape(error));
        }
        if metrics.rows.is_empty() && metrics.error.is_none() {
            out.push_str("No metric changed.\n\n");
        } else if !metrics.rows.is_empty() {
            out.push_str(&metric_table(metrics, code).to_markdown());
        }
        if !metrics.gates.is_empty() {
            out.push_str("**Gates:**\n\n");
            out.push_str(&gate_table(metrics, code).to_markdown());
        }
    }

    if !file.notes.is_empty() {
        out.push_str("**Notes:**\n\n");
        for note in &file.notes {
            let _ = writeln!(out, "- {}", escape(note));
        }
        out.push('\n');
    }

    markdown_diff(out, file);
}

fn markdown_diff(out: &mut String, file: &FileReview) {
    let lines: Vec<&str> = file.diff.text.lines().collect();
    let counts = format!("+{}, −{}", file.diff.added, file.diff.removed);
    let shown = &lines[..lines.len().min(MAX_DIFF_LINES)];
    let body = shown.join("\n");
    let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
    let block = format!("{fence}diff\n{body}\n{fence}\n");
    let cut = if lines.len() > shown.len() {
        format!(
            "\n{} more lines are not shown; run `mrel review` for the whole diff.\n",
            lines.len() - shown.len()
        )
    } else {
        String::new()
    };
    if lines.len() > FOLD_LINES {
        let _ = writeln!(
            out,
            "<details><summary>Diff ({counts})</summary>\n\n{block}{cut}\n</details>\n"
        );
    } else {
        let _ = writeln!(out, "**Diff** ({counts}):\n\n{block}{cut}");
    }
}

fn text_file(out: &mut String, file: &FileReview) {
    let _ = writeln!(
        out,
        "{} ({}): {}: {}",
        file.path,
        change_word(file.change),
        versions(file),
        verdict_word(file)
    );
    let indent = |out: &mut String, depth: usize, line: &str| {
        let _ = writeln!(out, "{}{line}", "  ".repeat(depth));
    };

    if let Some(summary) = &file.summary {
        let warning = command_warning(summary, plain);
        for (index, line) in warning.iter().enumerate() {
            if index == 0 {
                indent(out, 1, &format!("WARNING: {line}"));
            } else {
                indent(out, 2, line);
            }
        }
    }

    if file.change != ChangeKind::Removed {
        if file.problems.is_empty() {
            indent(out, 1, "validation: valid");
        } else {
            indent(out, 1, "validation:");
            for problem in &file.problems {
                indent(out, 2, &problem_line(problem));
            }
        }
    }

    if let Some(line) = release_line(file) {
        indent(out, 1, &format!("release: {line}"));
        if let Some(check) = &file.release {
            for problem in &check.problems {
                indent(out, 2, problem);
            }
        }
    }

    if let Some(summary) = &file.summary {
        let lines = summary_lines(summary, plain);
        if lines.is_empty() {
            indent(out, 1, "changes: none beyond formatting and comments");
        } else {
            indent(out, 1, "changes:");
            for line in lines {
                indent(out, 2, &line);
            }
        }
    }

    if let Some(metrics) = &file.metrics {
        indent(
            out,
            1,
            &format!("metrics {}:", metrics_heading(metrics, plain)),
        );
        if let Some(error) = &metrics.error {
            indent(out, 2, error);
        }
        if !metrics.rows.is_empty() {
            for line in metric_table(metrics, plain).to_text().lines() {
                indent(out, 2, line);
            }
        }
        if !metrics.gates.is_empty() {
            indent(out, 1, "gates:");
            for line in gate_table(metrics, plain).to_text().lines() {
                indent(out, 2, line);
            }
        }
    }

    for note in &file.notes {
        indent(out, 1, &format!("note: {note}"));
    }

    indent(
        out,
        1,
        &format!("diff (+{}, -{}):", file.diff.added, file.diff.removed),
    );
    for line in file.diff.text.lines() {
        indent(out, 2, line);
    }
}

fn plain(text: &str) -> String {
    text.to_owned()
}

/// Wraps `text` in a markdown code span that shows it literally, whatever backticks it contains.
fn code(text: &str) -> String {
    let text = text.replace(['\n', '\r'], " ");
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

fn longest_backtick_run(text: &str) -> usize {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// Escapes `<` outside code spans, so that text from a release file cannot open an HTML tag or
/// comment, and joins lines.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_code = false;
    for c in text.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_span_outlasts_backticks_inside() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
    }

    #[test]
    fn escape_leaves_code_spans_alone() {
        assert_eq!(escape("<!-- `<b>` -->"), "&lt;!-- `<b>` -->");
    }
}
