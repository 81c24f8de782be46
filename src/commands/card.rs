//! `mrel card`: a Hugging Face model card (README.md) for a release, from its tag and the
//! `card:` section of its release file.

use std::path::PathBuf;

use gix::bstr::ByteSlice;

use crate::card;
use crate::commands::{CommandError, Global, print_or_write};
use crate::record;
use crate::registry::{Event, Registry};
use crate::release_file::{self, ReleaseFile};
use crate::repo::Repo;
use crate::signature::Verifier;
use crate::templates::Templates;
use crate::workspace::{self, FindError};

pub struct Args {
    pub model: String,
    /// The release to describe, by default the latest one.
    pub version: Option<String>,
    pub output: Option<PathBuf>,
}

/// Reads the tag and release files only. Nothing that a release file declares is run.
pub fn run(global: &Global, args: &Args) -> Result<(), CommandError> {
    let repo = global.open()?;
    let registry = global.load_registry(&repo)?;
    let event = release_event(&registry, &args.model, args.version.as_deref())?;
    let record = record::parse_release(&event.tag, &event.message)?;
    let release = card_source(global, &repo, event, &record.release_file)?;

    let signature = Verifier::new(&repo.git).verify_tag_id(event.tag_id).status;
    let context = card::build(event, &record, signature, &release)?;
    let text = Templates::load(Some(repo.root()))?.render("card.md.j2", &context)?;
    print_or_write(global, args.output.as_deref(), &text)
}

/// Finds the release tag of `version`, or of the latest active version.
fn release_event<'a>(
    registry: &'a Registry,
    model: &'a str,
    version: Option<&str>,
) -> Result<&'a Event, CommandError> {
    let active = registry.releases(model);
    let Some(text) = version else {
        return active.last().map(|(_, event)| *event).ok_or_else(|| {
            CommandError::invalid(format!("model `{model}` has no active release"))
        });
    };
    let version = release_file::parse_version(text.strip_prefix('v').unwrap_or(text))
        .map_err(|message| CommandError::invalid(format!("invalid version `{text}`: {message}")))?;
    if let Some((_, event)) = active.iter().find(|(known, _)| **known == version) {
        return Ok(*event);
    }
    let tag = crate::tags::release_tag(model, &version);
    Err(CommandError::invalid(
        if registry.release(model, &version).is_some() {
            format!("{tag} was deregistered; a model card describes an active release")
        } else {
            format!("{tag} not found; `mrel status {model}` lists the released versions")
        },
    ))
}

/// Finds the release file whose `card:` section the card uses: the one at the released commit,
/// or the work tree's where that one has no `card:` section, so that a section added after a
/// release serves its card.
fn card_source(
    global: &Global,
    repo: &Repo,
    event: &Event,
    path: &str,
) -> Result<ReleaseFile, CommandError> {
    let at_release = match repo.file_at(event.commit, path)? {
        Some(bytes) => Some(release_file::parse(path, &bytes.to_str_lossy())?),
        None => None,
    };
    if let Some(release) = &at_release
        && release.card.is_some()
    {
        return Ok(release.clone());
    }
    match workspace::find_model(repo, &event.name.model) {
        Ok(current) if current.card.is_some() => {
            global.warn(&format!(
                "{path} at {} has no `card` section; using the one in the work tree's {}",
                event.tag, current.path
            ));
            Ok(current)
        }
        Ok(_) | Err(FindError::NotFound { .. }) => Err(card::CardError::MissingCard {
            file: path.to_owned(),
        }
        .into()),
        Err(error) => Err(error.into()),
    }
}
