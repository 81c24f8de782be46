//! Writing annotated tags, signed the way `git tag -s` signs them.

use gix::ObjectId;
use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};

use crate::repo::Repo;

/// Whether a tag gets a signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    Sign,
    /// Only on the user's explicit request (`--no-sign`).
    Unsigned,
}

const SIGNING_HELP: &str = "configure signing as for `git tag -s`: for SSH, `git config gpg.format ssh` and \
`git config user.signingKey ~/.ssh/id_ed25519.pub`; for OpenPGP, `git config user.signingKey KEYID`; \
or pass --no-sign for an unsigned tag";

#[derive(Debug, thiserror::Error)]
pub enum TagError {
    #[error(
        "tag {tag} already exists; nothing was changed. Release a new version, or delete the tag with `git tag -d {tag}` if you mean to replace it"
    )]
    Exists { tag: String },
    #[error(
        "no tagger identity: set `git config user.name` and `git config user.email` (the EMAIL variable alone is not enough)"
    )]
    NoIdentity,
    #[error("cannot sign tag {tag}: {message}; {SIGNING_HELP}")]
    Signing { tag: String, message: String },
    #[error("cannot write tag {tag}: {message}")]
    Write { tag: String, message: String },
}

/// Checks before a long training run that signing is configured, so that a release does not
/// train for hours only to fail at the end. The signature itself is made in [`create`].
pub fn check_signing(repo: &Repo, tag: &str) -> Result<(), TagError> {
    let options = repo
        .git
        .commit_signing_options()
        .map_err(|error| TagError::Signing {
            tag: tag.to_owned(),
            message: error.to_string(),
        })?;
    if options.signing_key.is_empty() {
        return Err(TagError::Signing {
            tag: tag.to_owned(),
            message: "no signing key is configured".into(),
        });
    }
    let key = options.signing_key.to_string_lossy();
    let is_literal_key = key.starts_with("key::") || key.starts_with("ssh-");
    if options.format == gix::objs::signature::Format::Ssh
        && !is_literal_key
        && !std::path::Path::new(key.as_ref()).exists()
    {
        return Err(TagError::Signing {
            tag: tag.to_owned(),
            message: format!("the SSH signing key file {key} does not exist"),
        });
    }
    Ok(())
}

/// Returns whether a tag exists under `refs/tags/`.
pub fn exists(repo: &Repo, tag: &str) -> Result<bool, TagError> {
    let write_error = |error: gix::Error| TagError::Write {
        tag: tag.to_owned(),
        message: error.to_string(),
    };
    let found = repo
        .git
        .try_find_reference(format!("refs/tags/{tag}").as_str())
        .map_err(write_error)?;
    Ok(found.is_some())
}

/// Creates the annotated tag `tag` on `target` with `message`, never replacing an existing tag.
///
/// The repository is opened anew so that the tagger time is the time of tagging, not the time
/// the command started, which matters after hours of training.
pub fn create(
    repo: &Repo,
    tag: &str,
    target: ObjectId,
    message: &str,
    signing: Signing,
) -> Result<ObjectId, TagError> {
    let write_error = |message: String| TagError::Write {
        tag: tag.to_owned(),
        message,
    };
    if exists(repo, tag)? {
        return Err(TagError::Exists {
            tag: tag.to_owned(),
        });
    }
    let fresh = gix::open(repo.git_dir()).map_err(|error| write_error(error.to_string()))?;
    let tagger = match fresh.committer() {
        Some(Ok(tagger)) => tagger
            .to_owned()
            .map_err(|error| write_error(error.to_string()))?,
        Some(Err(error)) => return Err(write_error(format!("invalid committer date: {error}"))),
        None => return Err(TagError::NoIdentity),
    };

    // git signs the message without its final newline followed by one newline; an unsigned tag
    // stores the message with its final newline.
    let message = message.trim_end_matches('\n');
    let mut object = gix::objs::Tag {
        target,
        target_kind: gix::object::Kind::Commit,
        name: tag.into(),
        tagger: Some(tagger),
        message: message.into(),
        signature: None,
    };
    object = match signing {
        Signing::Sign => {
            let options = fresh
                .commit_signing_options()
                .map_err(|error| TagError::Signing {
                    tag: tag.to_owned(),
                    message: error.to_string(),
                })?;
            object.sign(options).map_err(|error| TagError::Signing {
                tag: tag.to_owned(),
                message: signing_failure(&error),
            })?
        }
        Signing::Unsigned => {
            object.message.push(b'\n');
            object
        }
    };

    let tag_id = fresh
        .write_object(&object)
        .map_err(|error| write_error(error.to_string()))?
        .detach();
    let edit = RefEdit {
        change: Change::Update {
            log: LogChange {
                mode: RefLog::AndReference,
                force_create_reflog: false,
                message: format!("mrel: tag {tag}").into(),
            },
            expected: PreviousValue::MustNotExist,
            new: gix::refs::Target::Object(tag_id),
        },
        name: format!("refs/tags/{tag}").try_into().map_err(
            |error: gix::validate::reference::name::Error| write_error(error.to_string()),
        )?,
        deref: false,
    };
    let edits = fresh.edit_reference(edit).map_err(|error| {
        if error.is_conflict() {
            TagError::Exists {
                tag: tag.to_owned(),
            }
        } else {
            write_error(error.to_string())
        }
    })?;
    // `MustNotExist` lets an identical tag object through, which another process writing the same
    // tag in the same second produces, so the previous value is checked here.
    if edits
        .iter()
        .any(|edit| edit.change.previous_value().is_some())
    {
        return Err(TagError::Exists {
            tag: tag.to_owned(),
        });
    }
    Ok(tag_id)
}

/// Returns the signer's own stderr where it printed any, because it names the real cause (a
/// missing key file, an agent that refused). gix reports it as `program="…", stderr="…"`.
fn signing_failure(error: &gix::Error) -> String {
    let text = error.to_string();
    let field = |name: &str| {
        let start = text.find(&format!("{name}=\""))? + name.len() + 2;
        let end = text[start..]
            .find("\", ")
            .map_or(text.len() - 1, |end| start + end);
        Some(
            text[start..end]
                .replace("\\'", "'")
                .replace("\\r", "")
                .replace("\\n", " "),
        )
    };
    match (field("program"), field("stderr")) {
        (Some(program), Some(stderr)) if !stderr.trim().is_empty() => {
            format!("{program} failed: {}", stderr.trim())
        }
        _ => text,
    }
}
