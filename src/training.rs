//! Running a model's training command, with its output in a log file and a progress line on
//! stderr, then reading its metrics and hashing its artifacts.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::digest::{ArtifactDigest, DigestError, Hasher};
use crate::metrics::{self, Metrics, MetricsError};
use crate::release_file::{ReleaseFile, Train, TrainCommand, in_worktree};

/// How often a line is printed while training runs when stderr is not a terminal, as in CI logs.
const PLAIN_PROGRESS_INTERVAL: Duration = Duration::from_secs(30);
/// How long the training process group has to exit after SIGTERM before it gets SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);
/// How long the output pipes may stay open after the training command exits, before the
/// processes it left behind are stopped.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);
/// How often the wait loop checks for exit, timeout and interruption.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Results of a training run.
#[derive(Debug)]
pub struct Outcome {
    pub metrics: Metrics,
    pub artifacts: Vec<ArtifactDigest>,
    pub started: jiff::Timestamp,
    pub duration: Duration,
    pub log: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    #[error("{model} has no `train` section in {file}; add `train: {{command: ...}}`")]
    NotDeclared { model: String, file: String },
    #[error("cannot start training command `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("training failed with {status}; see the log at {}", log.display())]
    Failed { status: String, log: PathBuf },
    #[error("training timed out after {}; it was stopped. See the log at {}", humanize(*timeout), log.display())]
    TimedOut { timeout: Duration, log: PathBuf },
    #[error("training was interrupted and stopped; see the log at {}", log.display())]
    Interrupted { log: PathBuf },
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Metrics(#[from] MetricsError),
    #[error("{0}")]
    Digest(#[from] DigestError),
}

/// Formats a duration for people: `42s`, `3m 05s`, `2h 00m`.
pub fn humanize(duration: Duration) -> String {
    let seconds = duration.as_secs();
    if seconds < 60 {
        format!("{:.1}s", duration.as_secs_f64())
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

/// Working folder, release and variables of one training run.
pub struct Run<'a> {
    pub root: &'a Path,
    /// Folder for logs and parameter files, inside the git directory.
    pub state_dir: PathBuf,
    pub release: &'a ReleaseFile,
    pub previous_version: Option<String>,
    pub quiet: bool,
    /// Hashes the artifacts after training.
    pub hasher: &'a Hasher,
}

impl Run<'_> {
    /// Runs training, then reads the metrics and hashes the artifacts.
    pub fn execute(&self) -> Result<Outcome, TrainingError> {
        let release = self.release;
        let train = release
            .train
            .as_ref()
            .ok_or_else(|| TrainingError::NotDeclared {
                model: release.model.clone(),
                file: release.path.clone(),
            })?;

        let started = jiff::Timestamp::now();
        let stamp = started.strftime("%Y%m%dT%H%M%SZ").to_string();
        let base = format!(
            "{}-{}-{stamp}",
            release.model.replace(['/', ':'], "_"),
            release.version
        );
        std::fs::create_dir_all(&self.state_dir).map_err(|source| TrainingError::Io {
            path: self.state_dir.clone(),
            source,
        })?;
        let log = self.state_dir.join(format!("{base}.log"));
        let params_file = self.state_dir.join(format!("{base}.params.json"));
        let params =
            serde_json::to_vec_pretty(&release.params).expect("params always serialize to JSON");
        std::fs::write(&params_file, params).map_err(|source| TrainingError::Io {
            path: params_file.clone(),
            source,
        })?;

        let clock = Instant::now();
        let result = self.run_command(train, &log, &params_file);
        let duration = clock.elapsed();
        let _ = std::fs::remove_file(&params_file);
        result?;

        let metrics = match &release.metrics {
            Some(path) => metrics::load(&in_worktree(self.root, path), path)?,
            None => Metrics::new(),
        };
        let artifacts = self.hasher.artifacts(self.root, &release.artifacts)?;
        Ok(Outcome {
            metrics,
            artifacts,
            started,
            duration,
            log,
        })
    }

    fn run_command(
        &self,
        train: &Train,
        log: &Path,
        params_file: &Path,
    ) -> Result<(), TrainingError> {
        let release = self.release;
        let mut command = match &train.command {
            TrainCommand::Shell(text) => {
                let mut command = Command::new("sh");
                command.arg("-c").arg(text);
                command
            }
            TrainCommand::Argv(arguments) => {
                let mut command = Command::new(&arguments[0]);
                command.args(&arguments[1..]);
                command
            }
        };
        command
            .current_dir(in_worktree(self.root, &train.workdir))
            .envs(&train.env)
            .env("MREL_MODEL", &release.model)
            .env("MREL_VERSION", release.version.to_string())
            .env("MREL_PARAMS_FILE", params_file)
            .env(
                "MREL_PREVIOUS_VERSION",
                self.previous_version.as_deref().unwrap_or(""),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own lets a timeout or an interruption stop every process training
            // started, not only the shell.
            .process_group(0);

        let mut log_file = File::create(log).map_err(|source| TrainingError::Io {
            path: log.to_path_buf(),
            source,
        })?;
        let _ = writeln!(log_file, "$ {}", train.command);
        let log_file = Arc::new(Mutex::new(log_file));
        let last_line = Arc::new(Mutex::new(String::new()));

        let mut child = command.spawn().map_err(|source| TrainingError::Spawn {
            command: train.command.to_string(),
            source,
        })?;
        let readers = [
            child
                .stdout
                .take()
                .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|pipe| Box::new(pipe) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|pipe| copy_lines(pipe, Arc::clone(&log_file), Arc::clone(&last_line)))
        .collect::<Vec<_>>();

        let progress = Progress::start(
            self.quiet,
            &release.model,
            &release.version.to_string(),
            log,
        );
        let waited = wait(&mut child, train.timeout, &progress, &last_line);
        // A process that training left in the background can hold the output pipes open, which
        // would keep the readers, and mrel, waiting for it.
        if !wait_for_readers(&readers, OUTPUT_GRACE) {
            signal_group(child.id(), libc::SIGTERM);
            if !wait_for_readers(&readers, KILL_GRACE) {
                signal_group(child.id(), libc::SIGKILL);
            }
            if let Ok(mut log) = log_file.lock() {
                let _ = writeln!(log, "mrel: stopped processes that training left running");
            }
        }
        for reader in readers {
            let _ = reader.join();
        }
        progress.finish();

        let log = log.to_path_buf();
        match waited {
            Waited::Exited(status) if status.success() => Ok(()),
            Waited::Exited(status) => Err(TrainingError::Failed {
                status: describe_status(status),
                log,
            }),
            Waited::TimedOut(timeout) => Err(TrainingError::TimedOut { timeout, log }),
            Waited::Interrupted => Err(TrainingError::Interrupted { log }),
            Waited::Error(source) => Err(TrainingError::Io { path: log, source }),
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("signal {signal}"),
        _ => status.to_string(),
    }
}

/// Copies a pipe into the log line by line, keeping the last non-empty line for the progress
/// display.
fn copy_lines(
    pipe: Box<dyn Read + Send>,
    log: Arc<Mutex<File>>,
    last_line: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        while let Ok(read) = reader.read_until(b'\n', &mut line) {
            if read == 0 {
                break;
            }
            if let Ok(mut log) = log.lock() {
                let _ = log.write_all(&line);
            }
            let text = String::from_utf8_lossy(&line);
            // Progress bars redraw with carriage returns; the newest segment is what shows.
            let shown = text
                .trim_end()
                .rsplit('\r')
                .next()
                .unwrap_or_default()
                .trim();
            if !shown.is_empty()
                && let Ok(mut last) = last_line.lock()
            {
                *last = shown.to_owned();
            }
            line.clear();
        }
    })
}

enum Waited {
    Exited(std::process::ExitStatus),
    TimedOut(Duration),
    Interrupted,
    Error(std::io::Error),
}

fn wait(
    child: &mut Child,
    timeout: Option<Duration>,
    progress: &Progress,
    last_line: &Mutex<String>,
) -> Waited {
    let started = Instant::now();
    let _guard = interrupt::install();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) => {}
            Err(error) => return Waited::Error(error),
        }
        if let Some(timeout) = timeout.filter(|timeout| started.elapsed() >= *timeout) {
            stop_group(child);
            return Waited::TimedOut(timeout);
        }
        if interrupt::received() {
            stop_group(child);
            return Waited::Interrupted;
        }
        let last = last_line
            .lock()
            .map(|line| line.clone())
            .unwrap_or_default();
        progress.update(started.elapsed(), &last);
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Sends SIGTERM to the training process group, then SIGKILL to what is left after a grace
/// period.
/// Waits up to `limit` for every reader to reach the end of its pipe.
fn wait_for_readers(readers: &[std::thread::JoinHandle<()>], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if readers.iter().all(std::thread::JoinHandle::is_finished) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Sends `signal` to the process group that training's first process leads.
fn signal_group(leader: u32, signal: libc::c_int) {
    if let Ok(group) = i32::try_from(leader) {
        // SAFETY: kill(2) with a negative pid signals a process group and touches no memory of
        // this process. A group that is gone only makes it return an error.
        unsafe { libc::kill(-group, signal) };
    }
}

fn stop_group(child: &mut Child) {
    signal_group(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    signal_group(child.id(), libc::SIGKILL);
    let _ = child.wait();
}

/// SIGINT and SIGTERM handling while training runs: the signal is recorded, and the wait loop
/// stops the training process group, which is not in the terminal's foreground group.
mod interrupt {
    use super::{AtomicBool, Ordering};

    static RECEIVED: AtomicBool = AtomicBool::new(false);

    extern "C" fn record(_signal: libc::c_int) {
        RECEIVED.store(true, Ordering::SeqCst);
    }

    pub fn received() -> bool {
        RECEIVED.load(Ordering::SeqCst)
    }

    /// Restores the default handlers when dropped.
    pub struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            // SAFETY: restoring the default disposition of two standard signals.
            unsafe {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
            }
        }
    }

    pub fn install() -> Guard {
        let handler = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to atomics, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
        Guard
    }
}

/// The progress display on stderr: a live line on a terminal, a line every so often elsewhere.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    label: String,
    next_plain_line: Mutex<Duration>,
}

impl Progress {
    fn start(quiet: bool, model: &str, version: &str, log: &Path) -> Progress {
        let label = format!("{model} {version}");
        if quiet {
            return Progress {
                bar: None,
                plain: false,
                label,
                next_plain_line: Mutex::new(Duration::MAX),
            };
        }
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            let style = indicatif::ProgressStyle::with_template(
                "{spinner} training {prefix} [{elapsed_precise}] {wide_msg}",
            )
            .expect("the progress template is valid");
            bar.set_style(style);
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.println(format!("training {label}, log: {}", log.display()));
            return Progress {
                bar: Some(bar),
                plain: false,
                label,
                next_plain_line: Mutex::new(Duration::MAX),
            };
        }
        eprintln!("training {label}, log: {}", log.display());
        Progress {
            bar: None,
            plain: true,
            label,
            next_plain_line: Mutex::new(PLAIN_PROGRESS_INTERVAL),
        }
    }

    fn update(&self, elapsed: Duration, last_line: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(last_line.to_owned());
            return;
        }
        if !self.plain {
            return;
        }
        let Ok(mut next) = self.next_plain_line.lock() else {
            return;
        };
        if elapsed >= *next {
            eprintln!(
                "training {} [{}] {last_line}",
                self.label,
                humanize(elapsed)
            );
            *next += PLAIN_PROGRESS_INTERVAL;
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
