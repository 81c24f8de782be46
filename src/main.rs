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
        /// Hash every artifact instead of taking unchanged files' digests from the digest cache.
        #[arg(long)]
        no_cache: bool,
        /// Write the run record here instead of `mrel-run.json` next to the metrics file.
        #[arg(long, value_name = "PATH")]
        record: Option<PathBuf>,
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
        #[arg(long, default_value_t = DEFAULT_PRECISION, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=17))]
        precision: usize,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Render the release notes that `release` would write, from the work tree, without training.
    Notes {
        #[arg(required_unless_present = "from_context")]
        model: Option<String>,
        /// Print the template context as JSON instead.
        #[arg(long)]
        context: bool,
        /// Render the notes from a context file that `--context` wrote, without reading the
        /// repository's tags or release files (templates in .mrel/templates/ still apply).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["context", "no_cache"])]
        from_context: Option<PathBuf>,
        /// Hash every artifact instead of taking unchanged files' digests from the digest cache.
        #[arg(long)]
        no_cache: bool,
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
        /// Hash every artifact instead of taking unchanged files' digests from the digest cache.
        #[arg(long)]
        no_cache: bool,
        /// Release from this run record (made by `mrel train` or a job elsewhere) instead of
        /// training.
        #[arg(long, value_name = "PATH")]
        run: Option<PathBuf>,
        /// A revision whose commit the run record may name instead of HEAD.
        #[arg(long, value_name = "REV", requires = "run")]
        allow_commit: Option<String>,
        /// The folder holding the run's artifacts, with the record's paths relative to it.
        #[arg(long, value_name = "DIR", requires = "run")]
        artifacts: Option<PathBuf>,
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
    /// Check a release: the tag's signature, the record inside it, and the artifacts' digests.
    Verify {
        /// A release tag (MODEL@vVERSION), MODEL@VERSION, or MODEL#STAGE for the version in
        /// that stage now.
        target: String,
        /// Look the artifacts up in this folder instead of the work tree: a recorded path such
        /// as out/model.bin is read as DIR/out/model.bin.
        #[arg(long, value_name = "DIR")]
        artifacts: Option<PathBuf>,
        /// Hash every artifact instead of taking unchanged files' digests from the digest cache.
        #[arg(long)]
        no_cache: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the SHA-256 of files and folders as a release records them.
    #[command(hide = true)]
    Digest {
        /// Files or folders; a folder lists each of its files.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Hash every file instead of taking unchanged files' digests from the digest cache.
        #[arg(long)]
        no_cache: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Write a changelog of every release of one model or of all models, newest first, from
    /// the tags.
    Changelog {
        /// The model; every model when omitted.
        model: Option<String>,
        /// Write to this file (atomically) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "markdown")]
        format: commands::changelog::ChangelogFormat,
        /// Add stage promotions, rollbacks and unassignments to each release.
        #[arg(long)]
        with_stages: bool,
        /// Lowest version listed (inclusive, SemVer order).
        #[arg(long, value_name = "VERSION")]
        since: Option<String>,
        /// Highest version listed (inclusive, SemVer order).
        #[arg(long, value_name = "VERSION")]
        until: Option<String>,
    },
    /// Write a Hugging Face model card (README.md with model-index metadata) for a release.
    Card {
        model: String,
        /// The release to describe; the latest active release by default.
        version: Option<String>,
        /// Write to this file (atomically) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Describe the registry event of a tag, for pipelines that a tag push triggers; prints
    /// nothing for tags that are not registry tags.
    CheckRef {
        tag: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Judge the live metrics of the version in a stage against its release, and roll back on a
    /// failing monitor gate with --rollback.
    Monitor {
        model: String,
        /// The stage whose version is watched.
        #[arg(long)]
        stage: String,
        /// Live metrics exported by the monitoring job: JSON, YAML or TOML.
        #[arg(long, value_name = "FILE")]
        metrics: PathBuf,
        /// Put the stage's previous holder back at once when a gate fails.
        #[arg(long)]
        rollback: bool,
        /// Create an unsigned rollback tag.
        #[arg(long)]
        no_sign: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Print the greatest active version of a model.
    Latest {
        model: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show every model's latest version, who released it and when, and its stages.
    Status {
        model: Option<String>,
        /// Show the registry as it was at this time: RFC 3339, or a date for the end of that
        /// day in UTC.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Report on the release files that a pull request changes: validation, diff, the tag a
    /// release would create, and metrics against the latest release. Never runs training.
    Review {
        /// The branch the pull request merges into, such as `origin/main`.
        #[arg(long)]
        base: String,
        /// The pull request's head.
        #[arg(long, default_value = "HEAD")]
        head: String,
        /// A metrics file from a training run elsewhere: FILE when one release file changed,
        /// MODEL=FILE otherwise; repeat it for several models.
        #[arg(long, value_name = "[MODEL=]FILE")]
        metrics: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Install or remove the git hooks: pre-commit runs `mrel check --staged`, pre-push rejects
    /// registry tags that are unsigned, badly signed or carry a record that does not parse.
    Hooks {
        #[command(subcommand)]
        action: HooksAction,
    },
    /// Print the JSON Schema of release.yaml, for editors and other tools.
    Schema,
}

#[derive(Subcommand)]
enum HooksAction {
    /// Install the hooks where git looks for them (core.hooksPath or .git/hooks). A hook that
    /// mrel did not write is renamed to NAME.mrel-chained and runs first.
    Install {
        /// Replace hooks that mrel did not write instead of chaining to them.
        #[arg(long)]
        force: bool,
    },
    /// Remove mrel's hooks and put back the hooks they chained to.
    Uninstall,
    /// Check the refs that git passes to a pre-push hook on stdin (run by the installed hook).
    #[command(hide = true)]
    PrePush {
        /// The remote's name, as git passes it to the hook.
        remote: Option<String>,
        /// The remote's URL, as git passes it to the hook.
        url: Option<String>,
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
        Command::Train {
            model,
            no_cache,
            record,
            format,
        } => commands::train::run(
            global,
            &commands::train::Args {
                model,
                format,
                no_cache,
                record,
            },
        ),
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
        Command::Notes {
            model,
            context,
            no_cache,
            from_context,
        } => match from_context {
            Some(file) => commands::notes::run_from_context(global, model.as_deref(), &file),
            None => commands::notes::run(
                global,
                &commands::notes::Args {
                    model: model.expect("clap requires MODEL unless --from-context is given"),
                    context,
                    no_cache,
                },
            ),
        },
        Command::Release {
            model,
            dry_run,
            no_sign,
            no_cache,
            run,
            allow_commit,
            artifacts,
            format,
        } => commands::release::run(
            global,
            &commands::release::Args {
                model,
                dry_run,
                no_sign,
                format,
                no_cache,
                run,
                allow_commit,
                artifacts,
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
        Command::Verify {
            target,
            artifacts,
            no_cache,
            format,
        } => commands::verify::run(
            global,
            &commands::verify::Args {
                target,
                artifacts,
                no_cache,
                format,
            },
        ),
        Command::Digest {
            paths,
            no_cache,
            format,
        } => commands::digest::run(
            global,
            &commands::digest::Args {
                paths,
                no_cache,
                format,
            },
        ),
        Command::Changelog {
            model,
            output,
            format,
            with_stages,
            since,
            until,
        } => commands::changelog::run(
            global,
            &commands::changelog::Args {
                model,
                output,
                format,
                with_stages,
                since,
                until,
            },
        ),
        Command::Card {
            model,
            version,
            output,
        } => commands::card::run(
            global,
            &commands::card::Args {
                model,
                version,
                output,
            },
        ),
        Command::CheckRef { tag, format } => {
            commands::check_ref::run(global, &commands::check_ref::Args { tag, format })
        }
        Command::Monitor {
            model,
            stage,
            metrics,
            rollback,
            no_sign,
            format,
        } => commands::monitor::run(
            global,
            &commands::monitor::Args {
                model,
                stage,
                metrics,
                rollback,
                no_sign,
                format,
            },
        ),
        Command::Latest { model, format } => {
            commands::latest::run(global, &commands::latest::Args { model, format })
        }
        Command::Status { model, at, format } => {
            commands::status::run(global, &commands::status::Args { model, at, format })
        }
        Command::Review {
            base,
            head,
            metrics,
            format,
        } => commands::review::run(
            global,
            &commands::review::Args {
                base,
                head,
                metrics,
                format,
            },
        ),
        Command::Hooks { action } => match action {
            HooksAction::Install { force } => commands::hooks::install(global, force),
            HooksAction::Uninstall => commands::hooks::uninstall(global),
            HooksAction::PrePush { .. } => commands::hooks::pre_push(global),
        },
        Command::Schema => {
            commands::schema::run();
            Ok(())
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
