//! `mrel changelog`: every release of one model or of all models, newest first, from the tags.

use std::path::PathBuf;

use crate::changelog::{self, Options};
use crate::commands::{CommandError, Global, print_or_write};
use crate::signature::Verifier;
use crate::templates::Templates;

pub struct Args {
    pub model: Option<String>,
    pub output: Option<PathBuf>,
    pub format: ChangelogFormat,
    pub with_stages: bool,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Output format of the changelog: rendered from `changelog.md.j2`, or its context as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ChangelogFormat {
    Markdown,
    Json,
}

/// Reads tags and the release files at HEAD. Nothing that a release file declares is run.
pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let options = Options {
        model: args.model.clone(),
        with_stages: args.with_stages,
        since: version_bound("--since", args.since.as_deref())?,
        until: version_bound("--until", args.until.as_deref())?,
    };
    let repo = global.open()?;
    let registry = global.load_registry(&repo)?;
    let (declared, mut warnings) = changelog::declared_at_head(&repo)?;
    let verifier = Verifier::new(&repo.git);
    let built = changelog::build(&registry, &declared, &options, &verifier)?;
    warnings.extend(built.warnings);
    for warning in &warnings {
        global.warn(warning);
    }

    let text = match args.format {
        ChangelogFormat::Json => {
            let mut json = serde_json::to_string_pretty(&built.changelog)
                .expect("the changelog always serializes");
            json.push('\n');
            json
        }
        ChangelogFormat::Markdown => {
            Templates::load(Some(repo.root()))?.render("changelog.md.j2", &built.changelog)?
        }
    };
    print_or_write(global, args.output.as_deref(), &text)
}

/// Parses `--since` or `--until`: a SemVer version, with or without a leading `v`.
fn version_bound(
    option: &str,
    text: Option<&str>,
) -> Result<Option<semver::Version>, CommandError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let version = text.strip_prefix('v').unwrap_or(text);
    semver::Version::parse(version).map(Some).map_err(|error| {
        CommandError::invalid(format!(
            "invalid {option} `{text}`: {error}; give a SemVer version such as 1.2.0"
        ))
    })
}
