//! The git hooks that mrel installs. `pre-commit` validates the staged release files with
//! `mrel check --staged`. `pre-push` hands the refs being pushed to `mrel hooks pre-push`, which
//! rejects registry tags that are unsigned, badly signed or carry a record that does not parse.
//! A signature passes where `git verify-tag` would accept it.
//!
//! Hooks go where git looks for them: `core.hooksPath` where it is set (relative to the work tree
//! root), otherwise `hooks/` in the common git directory. A hook that mrel did not write is never
//! overwritten silently: mrel renames it to `NAME.mrel-chained` and its script runs it first, or,
//! where that name is taken, rejects the installation. `--force` replaces it and keeps the old
//! hook as `NAME.mrel-replaced`.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::ByteSlice;

use crate::record;
use crate::repo::Repo;
use crate::signature::{Status, Verifier};
use crate::tags::{self, TagKind};

/// The hooks mrel installs.
pub const HOOKS: [&str; 2] = ["pre-commit", "pre-push"];

/// Suffix of a hook that existed before mrel's and that mrel's hook runs first.
pub const CHAINED_SUFFIX: &str = ".mrel-chained";

/// The line that marks a hook script as mrel's.
const MARKER: &str = "# Installed by mrel.";

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot read core.hooksPath: {0}")]
    Config(String),
    #[error(
        "{hook} hook {path} was not written by mrel, and {chained} already exists, so mrel \
         cannot chain to it; merge the two hooks by hand, or pass --force to replace {path} \
         (the chained hook still runs first)"
    )]
    ChainTaken {
        hook: String,
        path: String,
        chained: String,
    },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HookError {
    let path = path.display().to_string();
    move |source| HookError::Io {
        action,
        path,
        source,
    }
}

/// Returns the folder in which git looks for hooks.
pub fn hooks_dir(repo: &Repo) -> Result<PathBuf, HookError> {
    let configured = repo
        .git
        .config_snapshot()
        .trusted_path("core.hooksPath")
        .map_err(|error| HookError::Config(error.to_string()))?;
    Ok(match configured {
        Some(path) if path.is_absolute() => path,
        Some(path) => repo.root().join(path),
        None => repo.git.common_dir().join("hooks"),
    })
}

/// The kind of file at a hook's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    Missing,
    /// A script that mrel wrote.
    Mrel,
    /// Anything else: the user's hook or another tool's.
    Foreign,
}

/// Looks at the file at `path`, following a symbolic link.
pub fn inspect(path: &Path) -> Existing {
    if std::fs::symlink_metadata(path).is_err() {
        return Existing::Missing;
    }
    match std::fs::read(path) {
        Ok(content) if content.lines().any(|line| line == MARKER.as_bytes()) => Existing::Mrel,
        _ => Existing::Foreign,
    }
}

/// Returns the path of the chained hook next to `hook`.
pub fn chained_path(dir: &Path, hook: &str) -> PathBuf {
    dir.join(format!("{hook}{CHAINED_SUFFIX}"))
}

/// The change that installing makes to one hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// No hook exists: write mrel's.
    Write,
    /// mrel's hook exists: rewrite it with the current path of mrel.
    Update,
    /// Another hook exists: rename it to `NAME.mrel-chained` and write mrel's, which runs it.
    Chain,
    /// Another hook exists and `--force` was given: replace it.
    Replace,
}

/// Decides what to do with every hook before anything changes, so that a rejected
/// installation leaves every hook as it was.
pub fn plan_install(dir: &Path, force: bool) -> Result<Vec<(&'static str, Action)>, HookError> {
    let mut plan = Vec::new();
    for hook in HOOKS {
        let path = dir.join(hook);
        let chained = chained_path(dir, hook);
        let action = match inspect(&path) {
            Existing::Missing => Action::Write,
            Existing::Mrel => Action::Update,
            Existing::Foreign if force => Action::Replace,
            Existing::Foreign if std::fs::symlink_metadata(&chained).is_ok() => {
                return Err(HookError::ChainTaken {
                    hook: hook.to_owned(),
                    path: path.display().to_string(),
                    chained: chained.display().to_string(),
                });
            }
            Existing::Foreign => Action::Chain,
        };
        plan.push((hook, action));
    }
    Ok(plan)
}

/// Returns the path where `--force` keeps a hook it replaces: `NAME.mrel-replaced`, numbered when taken.
pub fn replaced_path(dir: &Path, hook: &str) -> std::path::PathBuf {
    let first = dir.join(format!("{hook}.mrel-replaced"));
    if std::fs::symlink_metadata(&first).is_err() {
        return first;
    }
    (2..)
        .map(|number| dir.join(format!("{hook}.mrel-replaced.{number}")))
        .find(|candidate| std::fs::symlink_metadata(candidate).is_err())
        .expect("some numbered name is free")
}

/// Carries out a plan from [`plan_install`], writing scripts that run `mrel`.
pub fn install(dir: &Path, plan: &[(&'static str, Action)], mrel: &Path) -> Result<(), HookError> {
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    for (hook, action) in plan {
        let path = dir.join(hook);
        if *action == Action::Chain {
            let chained = chained_path(dir, hook);
            std::fs::rename(&path, &chained).map_err(io_error("rename", &path))?;
        }
        if *action == Action::Replace {
            // The replaced hook is kept beside, never deleted.
            let kept = replaced_path(dir, hook);
            std::fs::rename(&path, &kept).map_err(io_error("rename", &path))?;
        }
        write_script(&path, &script(hook, mrel))?;
    }
    Ok(())
}

/// Writes an executable script through a temporary file in the same folder, so that git never
/// runs a half-written hook.
fn write_script(path: &Path, content: &str) -> Result<(), HookError> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;

    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io_error("write", path))?;
    file.write_all(content.as_bytes())
        .map_err(io_error("write", path))?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o755))
        .map_err(io_error("set the mode of", path))?;
    file.persist(path)
        .map_err(|error| io_error("write", path)(error.error))?;
    Ok(())
}

/// The change that uninstalling made to one hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// mrel's hook was removed.
    Removed,
    /// mrel's hook was removed and the chained hook put back in its place.
    Restored,
    /// The hook is not mrel's, so it was left alone.
    Foreign,
    /// There was no hook.
    Missing,
}

/// Removes mrel's hooks and puts back the hooks they chained to.
pub fn uninstall(dir: &Path) -> Result<Vec<(&'static str, Removal)>, HookError> {
    let mut done = Vec::new();
    for hook in HOOKS {
        let path = dir.join(hook);
        let chained = chained_path(dir, hook);
        let existing = inspect(&path);
        if existing == Existing::Foreign {
            done.push((hook, Removal::Foreign));
            continue;
        }
        if existing == Existing::Mrel {
            std::fs::remove_file(&path).map_err(io_error("remove", &path))?;
        }
        let removal = if std::fs::symlink_metadata(&chained).is_ok() {
            std::fs::rename(&chained, &path).map_err(io_error("rename", &chained))?;
            Removal::Restored
        } else if existing == Existing::Mrel {
            Removal::Removed
        } else {
            Removal::Missing
        };
        done.push((hook, removal));
    }
    Ok(done)
}

/// Quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Returns the script of `hook`. It runs the chained hook first where there is one, then mrel:
/// the program at the path recorded at installation, or the first `mrel` on PATH where that file
/// is gone.
pub fn script(hook: &str, mrel: &Path) -> String {
    let (purpose, reads_refs, command) = match hook {
        "pre-push" => (
            "Rejects registry tags that are unsigned, badly signed or carry a record that does \
             not parse.",
            true,
            "hooks pre-push \"$@\"",
        ),
        _ => (
            "Validates the staged release files.",
            false,
            "check --staged",
        ),
    };
    let mut out = format!(
        "#!/bin/sh\n\
         {MARKER}\n\
         # {purpose}\n\
         # `mrel hooks uninstall` removes this hook and puts back the one it chained to.\n\
         hook_dir=$(dirname \"$0\")\n\
         chained=\"$hook_dir/{hook}{CHAINED_SUFFIX}\"\n\
         recorded={recorded}\n\
         mrel=$recorded\n\
         if [ ! -x \"$mrel\" ]; then\n\
         \x20 mrel=$(command -v mrel) || {{\n\
         \x20   echo \"{hook} hook: mrel is neither at $recorded nor on PATH; install it, run \
         \\`mrel hooks uninstall\\`, or skip the hook once with --no-verify\" >&2\n\
         \x20   exit 1\n\
         \x20 }}\n\
         fi\n",
        recorded = shell_quote(&mrel.to_string_lossy()),
    );
    if reads_refs {
        // Standard input can be read once, so the refs are kept and handed to both hooks.
        out.push_str(
            "refs=$(cat)\n\
             print_refs() {\n\
             \x20 if [ -n \"$refs\" ]; then printf '%s\\n' \"$refs\"; fi\n\
             }\n\
             if [ -x \"$chained\" ]; then\n\
             \x20 print_refs | \"$chained\" \"$@\" || exit $?\n\
             fi\n",
        );
        out.push_str(&format!("print_refs | \"$mrel\" {command}\n"));
    } else {
        out.push_str(
            "if [ -x \"$chained\" ]; then\n\
             \x20 \"$chained\" \"$@\" || exit $?\n\
             fi\n",
        );
        out.push_str(&format!("exec \"$mrel\" {command}\n"));
    }
    out
}

/// One ref that `git push` is about to update, as git writes it to a pre-push hook's stdin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedRef {
    pub local_ref: String,
    pub local_id: ObjectId,
    pub remote_ref: String,
}

/// Parses the lines git writes to a pre-push hook: `LOCAL_REF LOCAL_ID REMOTE_REF REMOTE_ID`.
pub fn parse_pushed_refs(input: &str) -> Result<Vec<PushedRef>, String> {
    let mut refs = Vec::new();
    for line in input.lines().filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [local_ref, local_id, remote_ref, _remote_id] = fields.as_slice() else {
            return Err(format!(
                "invalid pre-push line `{line}`: expected four fields, LOCAL_REF LOCAL_ID \
                 REMOTE_REF REMOTE_ID"
            ));
        };
        let local_id = ObjectId::from_hex(local_id.as_bytes())
            .map_err(|error| format!("invalid object id in pre-push line `{line}`: {error}"))?;
        refs.push(PushedRef {
            local_ref: (*local_ref).to_owned(),
            local_id,
            remote_ref: (*remote_ref).to_owned(),
        });
    }
    Ok(refs)
}

/// A pushed registry tag that is rejected, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub tag: String,
    pub reason: String,
}

/// Checks every registry tag among the pushed refs; deletions and other refs pass.
pub fn check_pushed(repo: &Repo, refs: &[PushedRef]) -> Vec<Rejection> {
    let mut rejections = Vec::new();
    for pushed in refs {
        let Some(tag) = pushed.remote_ref.strip_prefix("refs/tags/") else {
            continue;
        };
        let Some(name) = tags::parse(tag) else {
            continue;
        };
        if pushed.local_id.is_null() {
            continue;
        }
        if let Err(reason) = check_tag(repo, pushed.local_id, tag, &name.kind) {
            rejections.push(Rejection {
                tag: tag.to_owned(),
                reason,
            });
        }
    }
    rejections
}

/// Checks one tag object: annotated, signed, and with a record that parses where it has one.
fn check_tag(repo: &Repo, id: ObjectId, tag: &str, kind: &TagKind) -> Result<(), String> {
    let object = repo
        .git
        .find_object(id)
        .map_err(|error| format!("cannot read object {id}: {error}"))?;
    if object.kind != gix::object::Kind::Tag {
        return Err(
            "it is a lightweight tag, and registry tags are annotated and signed; recreate it \
             with mrel"
                .into(),
        );
    }
    let verdict = Verifier::new(&repo.git).verify_tag(&object.data);
    match verdict.status {
        Status::Good => {}
        Status::Unsigned => {
            return Err(
                "it is unsigned; registry tags are signed, so recreate it without --no-sign".into(),
            );
        }
        Status::Bad => return Err(format!("it is badly signed: {}", verdict.detail)),
        other => {
            return Err(format!(
                "its signature does not verify ({other}): {}; `git verify-tag {tag}` must accept it",
                verdict.detail
            ));
        }
    }

    let decoded = gix::objs::TagRef::from_bytes(&object.data, id.kind())
        .map_err(|error| format!("cannot decode the tag object: {error}"))?;

    let message = decoded.message.to_str_lossy();
    let (_, block) = record::split_message(&message);
    if block.is_some() {
        let parsed = match kind {
            TagKind::Register(_) => record::parse_release(tag, &message).map(drop),
            TagKind::Create => Ok(()),
            _ => record::parse_event(tag, &message).map(drop),
        };
        parsed.map_err(|error| format!("its record does not parse: {error}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_refs_parse() {
        let id = "1".repeat(40);
        let zero = "0".repeat(40);
        let refs = parse_pushed_refs(&format!(
            "refs/tags/a@v1.0.0 {id} refs/tags/a@v1.0.0 {zero}\n"
        ))
        .expect("valid input");
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].remote_ref, "refs/tags/a@v1.0.0");
    }

    #[test]
    fn pushed_refs_reject_short_line() {
        assert!(parse_pushed_refs("refs/heads/main 123\n").is_err());
    }

    #[test]
    fn shell_quote_escapes_quotes() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }

    #[test]
    fn script_is_marked() {
        let script = script("pre-commit", Path::new("/usr/bin/mrel"));
        assert!(script.lines().any(|line| line == MARKER));
        assert!(script.contains("recorded='/usr/bin/mrel'"));
    }
}
