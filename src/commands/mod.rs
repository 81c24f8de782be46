//! One module per subcommand, and the error type that maps failures to exit codes.

pub mod card;
pub mod changelog;
pub mod check;
pub mod check_ref;
pub mod deprecate;
pub mod diff;
pub mod digest;
pub mod from_run;
pub mod history;
pub mod hooks;
pub mod latest;
pub mod monitor;
pub mod notes;
pub mod promote;
pub mod release;
pub mod review;
pub mod rollback;
pub mod schema;
pub mod status;
pub mod train;
pub mod verify;

use std::fmt;
use std::path::PathBuf;

use crate::repo::Repo;

/// Options shared by every command.
#[derive(Clone, Debug)]
pub struct Global {
    /// Folder in which to look for the repository.
    pub directory: PathBuf,
    /// Silences progress and warnings on stderr.
    pub quiet: bool,
}

impl Global {
    pub fn open(&self) -> Result<Repo, CommandError> {
        let directory = std::path::absolute(&self.directory).map_err(|error| {
            CommandError::invalid(format!(
                "invalid directory {}: {error}",
                self.directory.display()
            ))
        })?;
        Ok(Repo::discover(&directory)?)
    }

    /// Loads the registry, warning once about lightweight tags that look like registry tags.
    pub fn load_registry(&self, repo: &Repo) -> Result<crate::registry::Registry, CommandError> {
        let registry = crate::registry::Registry::load(repo)?;
        if !registry.lightweight.is_empty() {
            self.warn(&format!(
                "ignoring lightweight tags that look like registry tags (registry tags are annotated): {}",
                registry.lightweight.join(", ")
            ));
        }
        Ok(registry)
    }

    /// Prints a warning on stderr unless `--quiet` is set.
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("warning: {message}");
        }
    }
}

/// Kind of failure that ended a command, which sets the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A check, gate or verification failed, or training failed or left no readable metrics or
    /// artifacts: exit code 1.
    Failed,
    /// Bad usage or invalid input: exit code 2.
    Invalid,
    /// Interrupted by SIGINT or SIGTERM: exit code 130.
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failed => 1,
            Kind::Invalid => 2,
            Kind::Interrupted => 130,
        }
    }
}

/// An error at the command-line edge, printed on stderr.
#[derive(Debug)]
pub struct CommandError {
    pub kind: Kind,
    pub message: String,
}

impl CommandError {
    pub fn invalid(message: impl Into<String>) -> Self {
        CommandError {
            kind: Kind::Invalid,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> Self {
        CommandError {
            kind: Kind::Failed,
            message: message.into(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.message)
    }
}

macro_rules! invalid_input {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for CommandError {
            fn from(error: $error) -> Self {
                CommandError::invalid(error.to_string())
            }
        })*
    };
}

invalid_input!(
    crate::repo::RepoError,
    crate::release_file::Problems,
    crate::workspace::FindError,
    crate::metrics::MetricsError,
    crate::digest::DigestError,
    crate::gates::GateError,
    crate::record::RecordError,
    crate::templates::TemplateError,
    crate::tagging::TagError,
    crate::changelog::ChangelogError,
    crate::card::CardError,
    crate::output::WriteError,
);

impl From<crate::training::TrainingError> for CommandError {
    fn from(error: crate::training::TrainingError) -> Self {
        use crate::training::TrainingError;
        let kind = match &error {
            // Training that ran but left no readable metrics or artifacts failed as training.
            TrainingError::Failed { .. }
            | TrainingError::TimedOut { .. }
            | TrainingError::Metrics(_)
            | TrainingError::Digest(_) => Kind::Failed,
            TrainingError::Interrupted { .. } => Kind::Interrupted,
            _ => Kind::Invalid,
        };
        CommandError {
            kind,
            message: error.to_string(),
        }
    }
}

/// Writes `text` to stdout, adding a final newline where it has none. Trailing blank lines stay,
/// so that a markdown table keeps the blank line that ends it.
pub fn print(text: &str) {
    if text.ends_with('\n') {
        print!("{text}");
    } else {
        println!("{text}");
    }
}

/// Writes `text` to `output` atomically, or to stdout when no file is given. A relative path is
/// relative to the folder that `-C` names.
pub fn print_or_write(
    global: &Global,
    output: Option<&std::path::Path>,
    text: &str,
) -> Result<(), CommandError> {
    match output {
        Some(path) => {
            crate::output::write_atomically(&global.directory.join(path), text)?;
            Ok(())
        }
        None => {
            print(text);
            Ok(())
        }
    }
}
