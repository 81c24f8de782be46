//! `mrel hooks`: installs and removes the git hooks, and runs the check behind the pre-push hook.

use std::io::Read as _;

use crate::commands::{CommandError, Global, print};
use crate::hooks::{self, Action, HookError, Removal};

impl From<HookError> for CommandError {
    fn from(error: HookError) -> Self {
        CommandError::invalid(error.to_string())
    }
}

/// Installs the pre-commit and pre-push hooks; `force` replaces hooks that mrel did not write.
pub fn install(global: &Global, force: bool) -> Result<(), CommandError> {
    let repo = global.open()?;
    let dir = hooks::hooks_dir(&repo)?;
    let mrel = std::env::current_exe()
        .and_then(|path| path.canonicalize())
        .map_err(|error| {
            CommandError::invalid(format!("cannot find the path of the mrel program: {error}"))
        })?;
    let plan = hooks::plan_install(&dir, force)?;
    hooks::install(&dir, &plan, &mrel)?;

    for (hook, action) in plan {
        let path = dir.join(hook);
        let path = path.display();
        print(&match action {
            Action::Write => format!("installed the {hook} hook at {path}"),
            Action::Update => format!("updated the {hook} hook at {path}"),
            Action::Chain => format!(
                "installed the {hook} hook at {path}; the hook that was there, now {}, runs first",
                hooks::chained_path(&dir, hook).display()
            ),
            Action::Replace => format!(
                "replaced the {hook} hook at {path} (--force); the old hook is kept beside it as {}.mrel-replaced",
                hook
            ),
        });
    }
    Ok(())
}

/// Removes mrel's hooks and puts back the hooks they chained to.
pub fn uninstall(global: &Global) -> Result<(), CommandError> {
    let repo = global.open()?;
    let dir = hooks::hooks_dir(&repo)?;
    for (hook, removal) in hooks::uninstall(&dir)? {
        let path = dir.join(hook);
        let path = path.display();
        match removal {
            Removal::Removed => print(&format!("removed the {hook} hook at {path}")),
            Removal::Restored => print(&format!(
                "removed the {hook} hook and put back the hook it chained to at {path}"
            )),
            Removal::Foreign => global.warn(&format!(
                "the {hook} hook at {path} was not written by mrel, so it was left in place"
            )),
            Removal::Missing => print(&format!("no {hook} hook at {path}")),
        }
    }
    Ok(())
}

/// Reads the refs that `git push` is about to update from stdin, as git writes them to a
/// pre-push hook, and fails when a registry tag among them must not be pushed.
pub fn pre_push(global: &Global) -> Result<(), CommandError> {
    let repo = global.open()?;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|error| CommandError::invalid(format!("cannot read the pushed refs: {error}")))?;
    let refs = hooks::parse_pushed_refs(&input).map_err(CommandError::invalid)?;

    let rejections = hooks::check_pushed(&repo, &refs);
    if rejections.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = rejections
        .iter()
        .map(|rejection| format!("  {}: {}", rejection.tag, rejection.reason))
        .collect();
    let noun = if rejections.len() == 1 { "tag" } else { "tags" };
    Err(CommandError::failed(format!(
        "the push was stopped because of {} registry {noun}:\n{}\n\
         Nothing was pushed. Fix or delete the {noun}, or skip this check once with \
         `git push --no-verify`.",
        rejections.len(),
        lines.join("\n")
    )))
}
