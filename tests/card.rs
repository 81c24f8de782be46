//! `mrel card` against real repositories: Hugging Face model cards whose front matter is parsed
//! back and checked field by field.

mod common;

use common::{MODEL, ModelFile, TestRepo, stderr_of, stdout_of};
use yaml_rust2::{Yaml, YamlLoader};

const CARD: &str = "\
card:
  license: mit
  task: {type: tabular-classification, name: Demo classification}
  dataset: {type: demo-data, name: Demo data, split: test}
  tags: [demo, mrel-test]
notes: |
  Trained on the demo data.
";

/// Returns the release file of the demo model with `extra` appended, such as a `card:` section.
fn release_file(model: &ModelFile, extra: &str) -> String {
    format!("{}{extra}", model.to_yaml())
}

fn commit_release_file(repo: &TestRepo, text: &str, message: &str) {
    repo.write("release.yaml", text);
    repo.commit_all(message);
}

/// Builds a repository with releases 1.0.0 (accuracy 0.5) and 1.1.0 (accuracy 0.6) of a model
/// whose release file has `extra` appended.
fn released(extra: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write_model(&ModelFile::new("1.0.0", 50));
    commit_release_file(
        &repo,
        &release_file(&ModelFile::new("1.0.0", 50), extra),
        "Add the demo model",
    );
    repo.release_unsigned();
    commit_release_file(
        &repo,
        &release_file(&ModelFile::new("1.1.0", 60), extra),
        "Release 1.1.0",
    );
    repo.release_unsigned();
    repo
}

fn card(repo: &TestRepo, args: &[&str]) -> std::process::Output {
    let mut all = vec!["card", MODEL];
    all.extend_from_slice(args);
    repo.mrel(&all).output().expect("mrel runs")
}

fn card_text(repo: &TestRepo, args: &[&str]) -> String {
    let output = card(repo, args);
    assert!(output.status.success(), "{}", stderr_of(&output));
    stdout_of(&output)
}

/// Parses the YAML between the card's opening `---` line and the next `---` line.
fn front_matter(card: &str) -> Yaml {
    let body = card
        .strip_prefix("---\n")
        .unwrap_or_else(|| panic!("the card starts with front matter:\n{card}"));
    let end = body
        .find("\n---\n")
        .unwrap_or_else(|| panic!("the front matter is closed:\n{card}"));
    let mut documents = YamlLoader::load_from_str(&body[..end]).expect("front matter is YAML");
    assert_eq!(documents.len(), 1, "one YAML document");
    documents.remove(0)
}

fn index_metric_names(metadata: &Yaml) -> Vec<String> {
    metadata["model-index"][0]["results"][0]["metrics"]
        .as_vec()
        .expect("a metrics list")
        .iter()
        .map(|metric| metric["name"].as_str().expect("a metric name").to_owned())
        .collect()
}

/// Fails with exit code 2 and returns stderr.
fn rejected(output: &std::process::Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{}", stderr_of(output));
    stderr_of(output)
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

#[test]
fn card_markdown_snapshot() {
    let repo = released(CARD);
    insta::assert_snapshot!(redact(&card_text(&repo, &[])));
}

#[test]
fn front_matter_has_hub_fields() {
    let repo = released(CARD);
    let metadata = front_matter(&card_text(&repo, &[]));
    assert_eq!(metadata["license"].as_str(), Some("mit"));
    let tags: Vec<&str> = metadata["tags"]
        .as_vec()
        .expect("a tags list")
        .iter()
        .map(|tag| tag.as_str().expect("a tag string"))
        .collect();
    assert_eq!(tags, ["demo", "mrel-test"]);

    let models = metadata["model-index"].as_vec().expect("model-index list");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0]["name"].as_str(), Some(MODEL));
    let results = models[0]["results"].as_vec().expect("results list");
    assert_eq!(results.len(), 1);
    let result = &results[0];
    assert_eq!(
        result["task"]["type"].as_str(),
        Some("tabular-classification")
    );
    assert_eq!(result["task"]["name"].as_str(), Some("Demo classification"));
    assert_eq!(result["dataset"]["type"].as_str(), Some("demo-data"));
    assert_eq!(result["dataset"]["name"].as_str(), Some("Demo data"));
    assert_eq!(result["dataset"]["split"].as_str(), Some("test"));

    let metrics = result["metrics"].as_vec().expect("metrics list");
    assert!(!metrics.is_empty());
    for metric in metrics {
        assert!(metric["type"].as_str().is_some(), "type of {metric:?}");
        assert!(metric["name"].as_str().is_some(), "name of {metric:?}");
        assert!(metric["value"].as_f64().is_some(), "value of {metric:?}");
    }
    assert_eq!(metrics[0]["type"].as_str(), Some("accuracy"));
    assert_eq!(metrics[0]["value"].as_f64(), Some(0.6));
}

#[test]
fn signed_release_card_shows_good_signature() {
    let repo = TestRepo::new();
    repo.write_model(&ModelFile::new("1.0.0", 50));
    commit_release_file(
        &repo,
        &release_file(&ModelFile::new("1.0.0", 50), CARD),
        "Add the demo model",
    );
    repo.configure_ssh_signing();
    let output = repo.mrel(&["release", MODEL]).output().expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let text = card_text(&repo, &[]);
    assert!(text.contains("(signature: good)"), "{text}");
}

#[test]
fn only_numeric_metrics_in_model_index() {
    let repo = released(CARD);
    let text = card_text(&repo, &[]);
    assert_eq!(index_metric_names(&front_matter(&text)), ["accuracy"]);
    // The body lists every metric, strings too.
    assert!(text.contains("| env.model | demo |"), "{text}");
}

#[test]
fn split_selects_its_metrics() {
    let command = "mkdir -p out && echo '{\"test\": {\"acc\": 0.9}, \"train\": {\"acc\": 0.99}}' > out/metrics.json && echo w > out/model.bin";
    let repo = TestRepo::new();
    repo.write_model(&ModelFile::new("1.0.0", 50));
    let model = ModelFile::new("1.0.0", 50).command(command);
    commit_release_file(&repo, &release_file(&model, CARD), "Add the model");
    repo.release_unsigned();
    let metadata = front_matter(&card_text(&repo, &[]));
    assert_eq!(index_metric_names(&metadata), ["test.acc"]);
    let metric = &metadata["model-index"][0]["results"][0]["metrics"][0];
    assert_eq!(metric["type"].as_str(), Some("acc"));
}

#[test]
fn named_version_gets_its_card() {
    let repo = released(CARD);
    let text = card_text(&repo, &["1.0.0"]);
    assert!(text.contains("\n# demo 1.0.0\n"), "{text}");
    let metadata = front_matter(&text);
    let value = &metadata["model-index"][0]["results"][0]["metrics"][0]["value"];
    assert_eq!(value.as_f64(), Some(0.5));
}

#[test]
fn deregistered_version_is_rejected() {
    let repo = released(CARD);
    let output = repo
        .mrel(&["deprecate", MODEL, "1.0.0", "--no-sign"])
        .output()
        .expect("mrel runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    let stderr = rejected(&card(&repo, &["1.0.0"]));
    assert!(stderr.contains("demo@v1.0.0 was deregistered"), "{stderr}");
}

#[test]
fn unknown_version_is_rejected() {
    let repo = released(CARD);
    let stderr = rejected(&card(&repo, &["9.9.9"]));
    assert!(stderr.contains("demo@v9.9.9 not found"), "{stderr}");
}

#[test]
fn model_without_release_is_rejected() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    let stderr = rejected(&card(&repo, &[]));
    assert!(stderr.contains("has no active release"), "{stderr}");
}

#[test]
fn missing_card_section_is_rejected() {
    let repo = released("");
    let stderr = rejected(&card(&repo, &[]));
    assert!(
        stderr.contains("release.yaml has no `card` section"),
        "{stderr}"
    );
}

#[test]
fn work_tree_card_serves_older_release() {
    let repo = released("");
    repo.write(
        "release.yaml",
        &release_file(&ModelFile::new("1.1.0", 60), CARD),
    );
    let output = card(&repo, &[]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stderr_of(&output).contains("using the one in the work tree's release.yaml"),
        "{}",
        stderr_of(&output)
    );
    let metadata = front_matter(&stdout_of(&output));
    assert_eq!(metadata["license"].as_str(), Some("mit"));
}

/// Commits a release file with `extra` and runs `mrel check`, which must reject the card.
fn card_check(extra: &str) -> String {
    let repo = TestRepo::new();
    repo.write_model(&ModelFile::new("1.0.0", 50));
    commit_release_file(
        &repo,
        &release_file(&ModelFile::new("1.0.0", 50), extra),
        "Add the demo model",
    );
    let output = repo.mrel(&["check"]).output().expect("mrel runs");
    assert_eq!(output.status.code(), Some(2), "{}", stdout_of(&output));
    stdout_of(&output)
}

#[test]
fn missing_license_fails_check() {
    let problems = card_check(&CARD.replace("  license: mit\n", ""));
    assert!(
        problems.contains("field `card.license`: missing required field"),
        "{problems}"
    );
}

#[test]
fn invalid_license_fails_check() {
    let problems = card_check(&CARD.replace("license: mit", "license: MIT License"));
    assert!(
        problems.contains("invalid license `MIT License`"),
        "{problems}"
    );
}

#[test]
fn missing_dataset_fails_check() {
    let problems = card_check(&CARD.replace(
        "  dataset: {type: demo-data, name: Demo data, split: test}\n",
        "",
    ));
    assert!(
        problems.contains("field `card.dataset`: missing required field"),
        "{problems}"
    );
}

#[test]
fn record_without_numbers_is_rejected() {
    let command = "mkdir -p out && echo '{\"note\": \"text only\"}' > out/metrics.json && echo w > out/model.bin";
    let repo = TestRepo::new();
    repo.write_model(&ModelFile::new("1.0.0", 50));
    let model = ModelFile::new("1.0.0", 50).command(command);
    commit_release_file(&repo, &release_file(&model, CARD), "Add the model");
    repo.release_unsigned();
    let stderr = rejected(&card(&repo, &[]));
    assert!(
        stderr.contains("records no numeric metric for the `test` split"),
        "{stderr}"
    );
}

#[test]
fn tag_without_record_is_rejected() {
    let repo = TestRepo::with_model(&ModelFile::new("1.0.0", 50));
    repo.git(&[
        "tag",
        "-a",
        "demo@v1.0.0",
        "-m",
        "Registering version v1.0.0",
    ]);
    let stderr = rejected(&card(&repo, &[]));
    assert!(stderr.contains("carries no mrel record"), "{stderr}");
}

#[test]
fn output_file_matches_stdout() {
    let repo = released(CARD);
    let printed = card_text(&repo, &[]);
    card_text(&repo, &["--output", "README.md"]);
    let written = std::fs::read_to_string(repo.root().join("README.md")).expect("read the card");
    assert_eq!(written, printed);
}

#[test]
fn failed_card_keeps_existing_output() {
    let repo = released(CARD);
    repo.write("README.md", "the old card\n");
    rejected(&card(&repo, &["9.9.9", "--output", "README.md"]));
    assert_eq!(
        std::fs::read_to_string(repo.root().join("README.md")).expect("read"),
        "the old card\n"
    );
}

#[test]
fn card_template_error_names_line() {
    let repo = released(CARD);
    repo.write(
        ".mrel/templates/card.md.j2",
        "---\n{{ front_matter }}---\n\n{{ metrics | join(1, 2) }}\n",
    );
    let stderr = rejected(&card(&repo, &[]));
    assert!(
        stderr.contains("template .mrel/templates/card.md.j2, line 4:"),
        "{stderr}"
    );
    assert!(stderr.contains("`{{ metrics | join(1, 2) }}`"), "{stderr}");
}

#[test]
fn override_replaces_card_template() {
    let repo = released(CARD);
    repo.write(
        ".mrel/templates/card.md.j2",
        "{{ model }} {{ version }} {{ license }} {{ dataset.name }}\n",
    );
    assert_eq!(card_text(&repo, &[]), "demo 1.1.0 mit Demo data\n");
}
