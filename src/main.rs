//! The `mrel` command line: parses arguments and dispatches to the commands in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mrel::commands::{self, CommandError, Global};
use mrel::report::{DEFAULT_PRECISION, Format};

#[derive(Parser)]
#[command(
    name = "mrel",
    version,
    about = "Release machine-learning models from a git repository as signed tags"
)]
struct Cli {
    /// Run as if started in this folder.
    #[arg(short = 'C', global = true, value_name = "PATH", default_value = ".")]
    directory: PathBuf,
    /// Silence progress and warnings on stderr.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print diagnostics on stderr (the RUST_LOG variable selects them in detail).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate release files: every tracked release.yaml, or the given paths.
    Check {
        paths: Vec<PathBuf>,
        /// Validate the staged content from the index, as a pre-commit hook does.
        #[arg(long)]
        staged: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Run the training command and show the metrics, without releasing.
    Train {
        model: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Compare metrics and params of two releases, revisions or the work tree.
    Diff {
        model: String,
        /// Older side: a release (MODEL@vX or X), a git revision, or `workspace`. Default: the
        /// release before --to.
        #[arg(long)]
        from: Option<String>,
        /// Newer side, in the same forms. Default: the latest release.
        #[arg(long)]
        to: Option<String>,
        /// Show unchanged metrics and params too.
        #[arg(long)]
        all: bool,
        /// Significant digits of numbers in text and markdown output.
        #[arg(long, default_value_t = DEFAULT_PRECISION)]
        precision: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Render the release notes that `release` would write, from the work tree, without training.
    Notes {
        model: String,
        /// Print the template context as JSON instead.
        #[arg(long)]
        context: bool,
    },
    /// Train, compare with the previous release, apply the gates, render notes, sign and tag.
    Release {
        model: String,
        /// Do everything except creating the tag, and print the notes.
        #[arg(long)]
        dry_run: bool,
        /// Create an unsigned tag (only this flag turns signing off).
        #[arg(long)]
        no_sign: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Assign a stage to a released version, along the declared promotion path.
    Promote {
        model: String,
        version: String,
        stage: String,
        /// Skip the rule that a version enters a stage only after the previous one.
        #[arg(long, requires = "reason")]
        force: bool,
        /// Why, recorded in the tag (required with --force).
        #[arg(long)]
        reason: Option<String>,
        /// Create an unsigned tag.
        #[arg(long)]
        no_sign: bool,
    },
    /// Put the version that held a stage before the current one back into it.
    Rollback {
        model: String,
        stage: String,
        /// The version to put back; by default the stage's previous holder.
        #[arg(long)]
        to: Option<String>,
        /// Why, recorded in the tag.
        #[arg(long)]
        reason: String,
        /// Create an unsigned tag.
        #[arg(long)]
        no_sign: bool,
    },
    /// Deregister a version, or deprecate the model when no version is given.
    Deprecate {
        model: String,
        version: Option<String>,
        /// Why, recorded in the tag.
        #[arg(long)]
        reason: Option<String>,
        /// Create an unsigned tag.
        #[arg(long)]
        no_sign: bool,
    },
    /// List every registry event of a model, oldest first.
    History {
        model: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show every model's latest version, who released it and when, and its stages.
    Status {
        model: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let global = Global {
        directory: cli.directory,
        quiet: cli.quiet,
    };
    match dispatch(&global, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(u8::try_from(error.kind.exit_code()).unwrap_or(1))
        }
    }
}

fn dispatch(global: &Global, command: Command) -> Result<(), CommandError> {
    match command {
        Command::Check {
            paths,
            staged,
            format,
        } => commands::check::run(
            global,
            &commands::check::Args {
                paths,
                staged,
                format,
            },
        ),
        Command::Train { model, format } => {
            commands::train::run(global, &commands::train::Args { model, format })
        }
        Command::Diff {
            model,
            from,
            to,
            all,
            precision,
            format,
        } => commands::diff::run(
            global,
            &commands::diff::Args {
                model,
                from,
                to,
                all,
                precision,
                format,
            },
        ),
        Command::Notes { model, context } => {
            commands::notes::run(global, &commands::notes::Args { model, context })
        }
        Command::Release {
            model,
            dry_run,
            no_sign,
            format,
        } => commands::release::run(
            global,
            &commands::release::Args {
                model,
                dry_run,
                no_sign,
                format,
            },
        ),
        Command::Promote {
            model,
            version,
            stage,
            force,
            reason,
            no_sign,
        } => commands::promote::run(
            global,
            &commands::promote::Args {
                model,
                version,
                stage,
                force,
                reason,
                no_sign,
            },
        ),
        Command::Rollback {
            model,
            stage,
            to,
            reason,
            no_sign,
        } => commands::rollback::run(
            global,
            &commands::rollback::Args {
                model,
                stage,
                to,
                reason,
                no_sign,
            },
        ),
        Command::Deprecate {
            model,
            version,
            reason,
            no_sign,
        } => commands::deprecate::run(
            global,
            &commands::deprecate::Args {
                model,
                version,
                reason,
                no_sign,
            },
        ),
        Command::History { model, format } => {
            commands::history::run(global, &commands::history::Args { model, format })
        }
        Command::Status { model, format } => {
            commands::status::run(global, &commands::status::Args { model, format })
        }
    }
}

fn init_tracing(verbose: bool) {
    let default = if verbose { "mrel=debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}
