//! `mrel release`: train, compare with the previous release, gate, render notes, sign and tag.

use std::path::PathBuf;

use crate::commands::from_run::{RunSource, trained_from_run};
use crate::commands::train::train;
use crate::commands::{CommandError, Global, print};
use crate::notes::{self, Prepared, Previous, Trained};
use crate::record::{self, compose_message};
use crate::registry::Registry;
use crate::release_file::ReleaseFile;
use crate::report::Format;
use crate::tagging::{self, Signing};
use crate::templates::Templates;
use crate::workspace;

pub struct Args {
    pub model: String,
    pub dry_run: bool,
    pub no_sign: bool,
    pub format: Format,
    /// Hashes every artifact instead of taking unchanged files' digests from the cache.
    pub no_cache: bool,
    /// Releases from this run record instead of training.
    pub run: Option<PathBuf>,
    /// A revision whose commit the run record may name instead of HEAD.
    pub allow_commit: Option<String>,
    /// Folder of the run's artifacts, when they are not in the work tree.
    pub artifacts: Option<PathBuf>,
}

pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let release = workspace::find_model(&repo, &args.model)?;
    let tag = release.tag_name();
    let signing = if args.no_sign {
        Signing::Unsigned
    } else {
        Signing::Sign
    };

    // Everything that can be checked before training is checked first, so that a long training
    // run is not wasted on a release that cannot be tagged.
    if tagging::exists(&repo, &tag)? {
        return Err(tagging::TagError::Exists { tag }.into());
    }
    if repo.is_dirty()? {
        return Err(CommandError::invalid(
            "tracked files differ from HEAD; commit or stash your changes so that the release \
             records exactly the code it was trained from (see `git status`)",
        ));
    }
    let commit = repo.head_commit()?;
    let registry = global.load_registry(&repo)?;
    if let Some(existing) = registry.model_events(&release.model).find(|event| {
        event.commit == commit && matches!(event.name.kind, crate::tags::TagKind::Register(_))
    }) {
        return Err(CommandError::invalid(format!(
            "commit {} already has the release tag {}; a commit carries one version of a model, \
             so commit your change before releasing {}",
            short(&commit.to_string()),
            existing.tag,
            release.version
        )));
    }
    if signing == Signing::Sign {
        match tagging::check_signing(&repo, &tag) {
            Ok(()) => {}
            // A dry run creates no tag, so it only warns that the real release would fail.
            Err(error) if args.dry_run => {
                global.warn(&format!("the release itself would fail: {error}"))
            }
            Err(error) => return Err(error.into()),
        }
    }
    let templates = Templates::load(Some(repo.root()))?;
    let previous = previous_release(&registry, &release)?;
    if let Some((_, event)) = registry.previous(&release.model, &release.version) {
        let verdict = crate::signature::Verifier::new(&repo.git).verify_event(event);
        if verdict.status == crate::signature::Status::Bad {
            global.warn(&format!(
                "the signature of {}, the release this one is compared with, is bad: its record may \
                 have been changed; check it with `mrel verify {}`",
                event.tag, event.tag
            ));
        }
    }
    if let Some((latest, _)) = registry.latest(&release.model)
        && *latest > release.version
    {
        global.warn(&format!(
            "{} {} is below the latest release {latest}; it is compared with {}, and `latest` stays {latest}",
            release.model,
            release.version,
            previous.as_ref().map_or("no earlier release", |previous| previous.version.as_str())
        ));
    }
    let preview = notes::prepare(
        &release,
        &commit.to_string(),
        Trained {
            metrics: crate::metrics::Metrics::new(),
            artifacts: Vec::new(),
            started: None,
            duration: None,
            run: None,
        },
        previous.as_ref(),
    )?;
    templates.check_variables("notes.md.j2", &preview.context)?;

    let (trained, log) = match &args.run {
        Some(record) => {
            let source = RunSource {
                record,
                allow_commit: args.allow_commit.as_deref(),
                artifacts: args.artifacts.as_deref(),
                no_cache: args.no_cache,
            };
            let trained = trained_from_run(global, &repo, &release, &source)?;
            (trained, format!("run record: {}", record.display()))
        }
        None => {
            let outcome = train(
                global,
                &repo,
                &release,
                previous.as_ref().map(|previous| previous.version.clone()),
                args.no_cache,
            )?;
            let log = format!("training log: {}", outcome.log.display());
            let trained = Trained {
                metrics: outcome.metrics,
                artifacts: outcome.artifacts,
                started: Some(outcome.started),
                duration: Some(outcome.duration),
                run: None,
            };
            (trained, log)
        }
    };
    let prepared = notes::prepare(&release, &commit.to_string(), trained, previous.as_ref())?;
    let rendered = templates.render("notes.md.j2", &prepared.context)?;

    if prepared.failed() {
        report_gate_failures(&prepared, &tag);
        return Err(CommandError::failed(format!(
            "release of {tag} stopped: a quality gate failed; no tag was created ({log})"
        )));
    }

    if args.dry_run {
        print_result(args.format, &rendered, &prepared, None);
        if !global.quiet {
            eprintln!("dry run: all gates passed; tag {tag} was not created");
        }
        return Ok(());
    }

    let message = compose_message(&rendered, &prepared.record);
    let tag_id = tagging::create(&repo, &tag, commit, &message, signing)?;
    print_result(
        args.format,
        &rendered,
        &prepared,
        Some((&tag, tag_id.to_string())),
    );
    if !global.quiet {
        let how = if signing == Signing::Sign {
            "signed"
        } else {
            "unsigned"
        };
        eprintln!(
            "created {how} tag {tag} on {}; push it with `git push origin {tag}`",
            short(&commit.to_string())
        );
    }
    Ok(())
}

/// Reads the record of the greatest release below this version.
pub fn previous_release(
    registry: &Registry,
    release: &ReleaseFile,
) -> Result<Option<Previous>, CommandError> {
    let Some((version, event)) = registry.previous(&release.model, &release.version) else {
        return Ok(None);
    };
    let record = record::parse_release(&event.tag, &event.message)?;
    Ok(Some(Previous {
        version: version.to_string(),
        record,
    }))
}

fn report_gate_failures(prepared: &Prepared, tag: &str) {
    for result in prepared
        .context
        .gates
        .iter()
        .filter(|result| result.status == crate::gates::Status::Failed)
    {
        let value = result
            .value
            .as_ref()
            .map_or_else(|| "missing".to_owned(), ToString::to_string);
        let previous = result
            .previous
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string);
        eprintln!(
            "gate failed for {tag}: {} {} {}: value {value}, previous {previous}: {}",
            result.metric, result.check, result.limit, result.reason
        );
    }
}

fn print_result(format: Format, rendered: &str, prepared: &Prepared, tag: Option<(&str, String)>) {
    match format {
        Format::Json => {
            let output = serde_json::json!({
                "tag": tag.as_ref().map(|(name, _)| *name),
                "tag_object": tag.as_ref().map(|(_, id)| id.clone()),
                "created": tag.is_some(),
                "notes": rendered,
                "record": prepared.record,
            });
            print(&serde_json::to_string_pretty(&output).expect("JSON output always serializes"));
        }
        Format::Text | Format::Markdown => print(rendered),
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
