//! `mrel changelog` and the notes template against real repositories: releases, stage events,
//! a deregistration and a deprecation, made by the mrel binary with pinned dates.

mod common;

use std::path::Path;

use common::{MODEL, ModelFile, TestRepo, stderr_of, stdout_of};

const STAGES: &[&str] = &["dev", "staging", "production"];

fn model(version: &str, epochs: u32) -> ModelFile {
    ModelFile::new(version, epochs).stages(STAGES)
}

/// Runs mrel and panics unless it succeeds.
fn run(repo: &TestRepo, args: &[&str]) -> String {
    let output = repo.mrel(args).output().expect("mrel runs");
    assert!(
        output.status.success(),
        "mrel {args:?} failed: {}",
        stderr_of(&output)
    );
    stdout_of(&output)
}

/// Three releases, promotions, a rollback, a deregistered version, a deprecated model, and a
/// committed release file that declares a version without a tag.
fn history() -> TestRepo {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.release_unsigned();
    repo.commit_model(&model("1.1.0", 60));
    repo.release_unsigned();
    repo.commit_model(&model("1.2.0", 70));
    repo.release_unsigned();
    run(&repo, &["promote", MODEL, "1.1.0", "dev", "--no-sign"]);
    run(&repo, &["promote", MODEL, "1.1.0", "staging", "--no-sign"]);
    run(&repo, &["promote", MODEL, "1.2.0", "dev", "--no-sign"]);
    let reason = "latency regression";
    run(
        &repo,
        &["rollback", MODEL, "dev", "--reason", reason, "--no-sign"],
    );
    let reason = "trained on a leaked split";
    run(
        &repo,
        &["deprecate", MODEL, "1.0.0", "--reason", reason, "--no-sign"],
    );
    let reason = "replaced by demo-v2";
    run(
        &repo,
        &["deprecate", MODEL, "--reason", reason, "--no-sign"],
    );
    repo.commit_model(&model("1.3.0", 80));
    repo
}

/// Replaces the training time and duration, which change on every run, with placeholders.
fn redact(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        match line.find(" ran for ") {
            Some(at) => {
                out.push_str(&line[..at]);
                out.push_str(" ran for [duration], started [time].");
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn changelog_json(repo: &TestRepo, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["changelog", "--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&run(repo, &args)).expect("JSON output")
}

fn versions(json: &serde_json::Value) -> Vec<String> {
    json["models"][0]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .map(|release| release["version"].as_str().expect("version").to_owned())
        .collect()
}

/// Lists the names of the files in a folder, sorted.
fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("list the folder")
        .map(|entry| {
            entry
                .expect("folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn write_override(repo: &TestRepo, name: &str, text: &str) {
    repo.write(&format!(".mrel/templates/{name}"), text);
}

#[test]
fn changelog_markdown_snapshot() {
    let repo = history();
    let text = run(&repo, &["changelog", "--with-stages"]);
    insta::assert_snapshot!(redact(&text));
}

#[test]
fn notes_template_snapshot() {
    let repo = history();
    let tag = repo.tag_object("demo@v1.2.0");
    let message = common::tag_message(&tag);
    let notes = &message[..message.find("```json mrel-record").expect("a record")];
    insta::assert_snapshot!(redact(notes.trim_end()));
}

#[test]
fn releases_listed_newest_first() {
    let json = changelog_json(&history(), &[]);
    assert_eq!(versions(&json), ["1.2.0", "1.1.0", "1.0.0"]);
}

#[test]
fn release_shows_who_when_and_signature() {
    let json = changelog_json(&history(), &[]);
    let release = &json["models"][0]["releases"][0];
    assert_eq!(release["tag"], "demo@v1.2.0");
    assert_eq!(release["time"], "2024-01-01T00:00:00Z");
    assert_eq!(release["date"], "2024-01-01");
    assert_eq!(release["released_by"], "Test <test@example.com>");
    assert_eq!(release["signature"], "unsigned");
    assert_eq!(release["previous_version"], "1.1.0");
    assert!(
        release["notes"]
            .as_str()
            .expect("notes")
            .starts_with("# demo 1.2.0"),
        "{}",
        release["notes"]
    );
}

#[test]
fn signed_release_verifies_good() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.configure_ssh_signing();
    run(&repo, &["release", MODEL]);
    run(&repo, &["promote", MODEL, "1.0.0", "dev"]);
    let json = changelog_json(&repo, &["--with-stages"]);
    let release = &json["models"][0]["releases"][0];
    assert_eq!(release["signature"], "good");
    assert_eq!(release["stages"][0]["signature"], "good");
}

#[test]
fn signature_by_unknown_key_is_reported() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.configure_ssh_signing();
    run(&repo, &["release", MODEL]);
    let empty_signers = repo.scratch().join("no_signers");
    std::fs::write(&empty_signers, "").expect("write an empty allowed signers file");
    repo.git(&[
        "config",
        "gpg.ssh.allowedSignersFile",
        empty_signers.to_str().expect("UTF-8 path"),
    ]);
    let json = changelog_json(&repo, &[]);
    assert_eq!(json["models"][0]["releases"][0]["signature"], "unknown_key");
}

#[test]
fn changed_metrics_and_params_against_previous() {
    let json = changelog_json(&history(), &[]);
    let release = &json["models"][0]["releases"][1];
    assert_eq!(release["version"], "1.1.0");
    let accuracy = release["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .find(|row| row["name"] == "accuracy")
        .expect("accuracy changed");
    assert_eq!(accuracy["old"].to_string(), "0.50");
    assert_eq!(accuracy["new"].to_string(), "0.60");
    assert_eq!(
        release["params"],
        serde_json::json!([{"name": "epochs", "old": 50, "new": 60}])
    );
}

#[test]
fn first_release_lists_every_metric_as_added() {
    let json = changelog_json(&history(), &[]);
    let first = &json["models"][0]["releases"][2];
    assert_eq!(first["previous_version"], serde_json::Value::Null);
    let verdicts: Vec<&str> = first["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|row| row["verdict"].as_str().expect("verdict"))
        .collect();
    assert!(!verdicts.is_empty());
    assert!(
        verdicts.iter().all(|verdict| *verdict == "added"),
        "{verdicts:?}"
    );
}

#[test]
fn deregistered_version_is_marked() {
    let json = changelog_json(&history(), &[]);
    let releases = &json["models"][0]["releases"];
    assert_eq!(releases[2]["deregistered"]["tag"], "demo@v1.0.0!");
    assert_eq!(
        releases[2]["deregistered"]["reason"],
        "trained on a leaked split"
    );
    assert_eq!(releases[1]["deregistered"], serde_json::Value::Null);
}

#[test]
fn deprecated_model_is_marked() {
    let repo = history();
    let json = changelog_json(&repo, &[]);
    assert_eq!(
        json["models"][0]["deprecated"]["reason"],
        "replaced by demo-v2"
    );
    let text = run(&repo, &["changelog"]);
    assert!(text.contains("## demo (deprecated)"), "{text}");
}

#[test]
fn release_after_deprecation_clears_mark() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.release_unsigned();
    run(&repo, &["deprecate", MODEL, "--no-sign"]);
    repo.commit_model(&model("1.1.0", 60));
    // Tag times have one-second resolution, so the later release gets a later date.
    repo.mrel(&["release", MODEL, "--no-sign"])
        .env("GIT_COMMITTER_DATE", "2024-01-02T00:00:00Z")
        .assert()
        .success();
    let json = changelog_json(&repo, &[]);
    assert_eq!(json["models"][0]["deprecated"], serde_json::Value::Null);
}

#[test]
fn unreleased_version_from_head() {
    let json = changelog_json(&history(), &[]);
    let unreleased = &json["models"][0]["unreleased"];
    assert_eq!(unreleased["version"], "1.3.0");
    assert_eq!(unreleased["previous_version"], "1.2.0");
    assert_eq!(
        unreleased["params"],
        serde_json::json!([{"name": "epochs", "old": 70, "new": 80}])
    );
}

#[test]
fn uncommitted_version_is_not_unreleased() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.release_unsigned();
    repo.write("release.yaml", &model("1.1.0", 60).to_yaml());
    let json = changelog_json(&repo, &[]);
    assert_eq!(json["models"][0]["unreleased"], serde_json::Value::Null);
}

#[test]
fn stages_only_with_flag() {
    let repo = history();
    let without = changelog_json(&repo, &[]);
    assert_eq!(
        without["models"][0]["releases"][1]["stages"],
        serde_json::json!([])
    );

    let with = changelog_json(&repo, &["--with-stages"]);
    let stages = with["models"][0]["releases"][1]["stages"]
        .as_array()
        .expect("stages")
        .clone();
    let events: Vec<(&str, &str)> = stages
        .iter()
        .map(|stage| {
            (
                stage["event"].as_str().expect("event"),
                stage["stage"].as_str().expect("stage"),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("promote", "dev"),
            ("promote", "staging"),
            ("rollback", "dev")
        ]
    );
    assert_eq!(stages[2]["replaces"], "1.2.0");
    assert_eq!(stages[2]["reason"], "latency regression");
}

#[test]
fn since_and_until_are_inclusive() {
    let repo = history();
    let json = changelog_json(&repo, &["--since", "1.1.0", "--until", "v1.2.0"]);
    assert_eq!(versions(&json), ["1.2.0", "1.1.0"]);
    assert_eq!(json["models"][0]["unreleased"], serde_json::Value::Null);
    assert_eq!(
        json["models"][0]["releases"][1]["previous_version"],
        "1.0.0"
    );
}

#[test]
fn since_keeps_unreleased_version() {
    let json = changelog_json(&history(), &["--since", "1.2.0"]);
    assert_eq!(versions(&json), ["1.2.0"]);
    assert_eq!(json["models"][0]["unreleased"]["version"], "1.3.0");
}

#[test]
fn since_above_until_is_rejected() {
    let repo = history();
    let output = repo
        .mrel(&["changelog", "--since", "1.2.0", "--until", "1.0.0"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("--since 1.2.0 is above --until 1.0.0"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn invalid_version_bound_is_rejected() {
    let repo = history();
    let output = repo
        .mrel(&["changelog", "--since", "one"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("invalid --since `one`"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn unknown_model_is_rejected() {
    let repo = history();
    let output = repo
        .mrel(&["changelog", "nosuch"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert!(stderr.contains("model `nosuch` not found"), "{stderr}");
    assert!(stderr.contains("(known models: demo)"), "{stderr}");
}

#[test]
fn every_model_listed_by_name() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.release_unsigned();
    repo.write(
        "alpha/release.yaml",
        "model: alpha\nversion: 0.1.0\ntrain:\n  command: 'mkdir -p out && echo ''{\"loss\": 1}'' > out/metrics.json'\nmetrics: out/metrics.json\n",
    );
    repo.commit_all("Add the alpha model");
    run(&repo, &["release", "alpha", "--no-sign"]);

    let json = changelog_json(&repo, &[]);
    let models: Vec<&str> = json["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|entry| entry["model"].as_str().expect("model"))
        .collect();
    assert_eq!(models, ["alpha", "demo"]);

    let alpha_only = changelog_json(&repo, &["alpha"]);
    assert_eq!(alpha_only["models"].as_array().expect("models").len(), 1);
}

#[test]
fn tag_without_record_is_listed() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.git(&[
        "tag",
        "-a",
        "demo@v0.9.0",
        "-m",
        "Registering version v0.9.0",
    ]);
    let json = changelog_json(&repo, &[]);
    let release = &json["models"][0]["releases"][0];
    assert_eq!(release["version"], "0.9.0");
    assert_eq!(release["has_record"], false);
    assert_eq!(release["notes"], "Registering version v0.9.0");
}

#[test]
fn nothing_declared_is_run() {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.release_unsigned();
    repo.commit_model(&model("1.1.0", 60).command("touch ran-by-changelog"));
    run(&repo, &["changelog", "--with-stages"]);
    assert!(!repo.root().join("ran-by-changelog").exists());
}

#[test]
fn output_file_matches_stdout() {
    let repo = history();
    let printed = run(&repo, &["changelog", "--with-stages"]);
    let before = file_names(repo.root());
    run(
        &repo,
        &["changelog", "--with-stages", "--output", "CHANGELOG.md"],
    );
    let written =
        std::fs::read_to_string(repo.root().join("CHANGELOG.md")).expect("read the output");
    assert_eq!(written, printed);
    let mut expected = before;
    expected.push("CHANGELOG.md".to_owned());
    expected.sort();
    assert_eq!(file_names(repo.root()), expected);
}

#[test]
fn failed_render_keeps_existing_output() {
    let repo = history();
    repo.write("CHANGELOG.md", "the old changelog\n");
    write_override(&repo, "changelog.md.j2", "# Log\n{{ nosuch }}\n");
    let before = file_names(repo.root());
    let output = repo
        .mrel(&["changelog", "--output", "CHANGELOG.md"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(repo.root().join("CHANGELOG.md")).expect("read"),
        "the old changelog\n"
    );
    assert_eq!(file_names(repo.root()), before);
}

#[test]
fn output_into_missing_folder_is_rejected() {
    let repo = history();
    let output = repo
        .mrel(&["changelog", "--output", "missing/CHANGELOG.md"])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("cannot write"),
        "{}",
        stderr_of(&output)
    );
    assert!(!repo.root().join("missing").exists());
}

#[test]
fn override_replaces_changelog_template() {
    let repo = history();
    write_override(
        &repo,
        "changelog.md.j2",
        "{% for entry in models %}{% for release in entry.releases %}{{ release.version }} {% endfor %}{% endfor %}\n",
    );
    assert_eq!(run(&repo, &["changelog"]), "1.2.0 1.1.0 1.0.0 \n");
}

/// Renders the changelog with an override of `changelog.md.j2` and returns stderr, checking that
/// the command failed with exit code 2.
fn template_failure(text: &str) -> String {
    let repo = TestRepo::with_model(&model("1.0.0", 50));
    repo.release_unsigned();
    write_override(&repo, "changelog.md.j2", text);
    let output = repo.mrel(&["changelog"]).output().expect("mrel runs");
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(&output));
    stderr_of(&output)
}

#[test]
fn undefined_variable_names_template_and_line() {
    let stderr = template_failure("# Log\n\n{{ models[0].owner }}\n");
    assert!(
        stderr.contains(
            "template .mrel/templates/changelog.md.j2, line 3: `models[0].owner` is undefined"
        ),
        "{stderr}"
    );
}

#[test]
fn syntax_error_names_template_and_line() {
    let stderr = template_failure("# Log\n{% for entry in models %}\n{{ entry.model }\n");
    assert!(
        stderr.contains("template .mrel/templates/changelog.md.j2, line 3: syntax error"),
        "{stderr}"
    );
}

#[test]
fn failing_filter_names_template_line_and_variable() {
    let stderr = template_failure(
        "# Log\n{% for entry in models %}\n{{ entry.model | int }}\n{% endfor %}\n",
    );
    assert!(
        stderr.contains(
            "template .mrel/templates/changelog.md.j2, line 3: invalid operation in `{{ entry.model | int }}`"
        ),
        "{stderr}"
    );
}

#[test]
fn endless_loop_is_stopped() {
    let stderr = template_failure(
        "# Log\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n",
    );
    assert!(
        stderr.contains(
            "template .mrel/templates/changelog.md.j2, line 2: the template ran too long"
        ),
        "{stderr}"
    );
}

#[test]
fn notes_from_context_match_notes() {
    let repo = history();
    run(&repo, &["train", MODEL]);
    let notes = run(&repo, &["notes", MODEL]);
    let context = run(&repo, &["notes", MODEL, "--context"]);
    let file = repo.scratch().join("context.json");
    std::fs::write(&file, context).expect("write the context");
    let file_text = file.to_str().expect("UTF-8 path");

    let from_file = run(&repo, &["notes", "--from-context", file_text]);
    assert_eq!(from_file, notes);
}

#[test]
fn notes_from_context_need_no_repository() {
    let repo = history();
    run(&repo, &["train", MODEL]);
    let context = run(&repo, &["notes", MODEL, "--context"]);
    let outside = repo.scratch().join("preview");
    std::fs::create_dir_all(&outside).expect("create a folder outside the repository");
    std::fs::write(outside.join("context.json"), &context).expect("write the context");

    let output = repo
        .mrel(&["notes", "--from-context", "context.json"])
        .current_dir(&outside)
        .output()
        .expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).starts_with("# demo 1.3.0\n"),
        "{}",
        stdout_of(&output)
    );
}

#[test]
fn notes_from_context_use_repository_templates() {
    let repo = history();
    write_override(
        &repo,
        "notes.md.j2",
        "custom notes of {{ model }} {{ version }}\n",
    );
    std::fs::write(
        repo.scratch().join("context.json"),
        r#"{"model": "demo", "version": "9.9.9"}"#,
    )
    .expect("write the context");
    let file = repo.scratch().join("context.json");
    let text = run(
        &repo,
        &[
            "notes",
            "--from-context",
            file.to_str().expect("UTF-8 path"),
        ],
    );
    assert_eq!(text, "custom notes of demo 9.9.9\n");
}

#[test]
fn notes_from_invalid_context_is_rejected() {
    let repo = TestRepo::new();
    let file = repo.scratch().join("context.json");
    let file_text = file.to_str().expect("UTF-8 path");
    for (contents, expected) in [
        ("{\"model\": ", "is not valid JSON"),
        ("[1, 2]", "contains no JSON object"),
        ("{\"model\": \"demo\"}", "`version` is undefined"),
    ] {
        std::fs::write(&file, contents).expect("write the context");
        let output = repo
            .mrel(&["notes", "--from-context", file_text])
            .output()
            .expect("mrel runs");
        assert_eq!(output.status.code(), Some(2), "{contents}");
        assert!(
            stderr_of(&output).contains(expected),
            "{contents}: {}",
            stderr_of(&output)
        );
    }
}

#[test]
fn notes_from_context_of_other_model_is_rejected() {
    let repo = TestRepo::new();
    let file = repo.scratch().join("context.json");
    std::fs::write(&file, r#"{"model": "other", "version": "1.0.0"}"#).expect("write");
    let output = repo
        .mrel(&[
            "notes",
            MODEL,
            "--from-context",
            file.to_str().expect("UTF-8 path"),
        ])
        .output()
        .expect("mrel runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("is for model `other`, not `demo`"),
        "{}",
        stderr_of(&output)
    );
}
