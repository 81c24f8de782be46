//! The digest cache in `<git dir>/mrel/digest-cache.json`: the SHA-256 of each file hashed
//! before, keyed by its absolute path and valid while the file's size, modification time, change
//! time, inode and device stay the same.
//!
//! Any write to a file sets its change time (ctime) to the current time, and no system call sets
//! it back, so a file rewritten with the same size and its old modification time still misses
//! the cache. The exception is a second write within the same tick of the file system's clock,
//! which can leave every time unchanged. Entries are therefore stored only for files whose times
//! lie before the start of hashing by more than the clock's granularity.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The cache file's name inside `<git dir>/mrel/`.
const CACHE_FILE: &str = "digest-cache.json";
/// The version of the cache file's layout; a file of another version is replaced.
const FORMAT: &str = "mrel.digest-cache/1";
/// How far file times must lie before the start of hashing on file systems with sub-second
/// timestamps. It covers the lag of the kernel's coarse clock behind the system clock, which is
/// one scheduler tick (at most 10 ms).
const FINE_MARGIN: Duration = Duration::from_millis(100);
/// The same margin on file systems whose timestamps have whole seconds, as FAT's two-second
/// modification times and ext3's one-second times do.
// NOTE: both margins assume that the file system stamps times from this machine's clock. A
// network file system whose server stamps whole seconds and runs more than two seconds behind
// can keep a stale entry for a file rewritten while it was hashed.
const COARSE_MARGIN: Duration = Duration::from_secs(3);

const NANOS_PER_SECOND: i64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "cannot read the digest cache {}: {source}; it will be rebuilt",
        path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the digest cache {} is invalid ({message}); it will be rebuilt",
        path.display()
    )]
    Invalid { path: PathBuf, message: String },
    #[error(
        "cannot write the digest cache {}: {source}; digests were computed but will be computed again next time",
        path.display()
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// File metadata that changes whenever the file's content can have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    /// Modification time in nanoseconds since the Unix epoch.
    mtime_ns: i64,
    /// Change time (the inode's last change) in nanoseconds since the Unix epoch.
    ctime_ns: i64,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(metadata: &Metadata) -> Stamp {
        let nanos = |seconds: i64, nanoseconds: i64| {
            seconds
                .saturating_mul(NANOS_PER_SECOND)
                .saturating_add(nanoseconds)
        };
        Stamp {
            size: metadata.size(),
            mtime_ns: nanos(metadata.mtime(), metadata.mtime_nsec()),
            ctime_ns: nanos(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
            device: metadata.dev(),
        }
    }

    /// Returns whether a write after `started` could leave the file with these same times,
    /// because they fall within the file system clock's granularity of `started`. The kernel sets the change
    /// time, so whole-second change times mark a file system with coarse timestamps.
    fn is_racy(&self, started: SystemTime) -> bool {
        let margin = if self.ctime_ns % NANOS_PER_SECOND == 0 {
            COARSE_MARGIN
        } else {
            FINE_MARGIN
        };
        let Some(safe_until) = started
            .checked_sub(margin)
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        else {
            return true;
        };
        let safe_until = i64::try_from(safe_until.as_nanos()).unwrap_or(i64::MAX);
        self.mtime_ns.max(self.ctime_ns) >= safe_until
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    stamp: Stamp,
    /// Lowercase hex SHA-256 of the file's content.
    sha256: String,
}

#[derive(Serialize, Deserialize)]
struct CacheFile {
    format: String,
    /// Absolute path to entry.
    files: BTreeMap<String, Entry>,
}

/// Digests of files hashed before, loaded from and saved to the git directory.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    files: BTreeMap<String, Entry>,
    /// Entries stored since loading, which [`Cache::save`] writes.
    added: BTreeMap<String, Entry>,
}

impl Cache {
    /// Loads the cache of the repository whose git directory is `git_dir`. A missing cache file
    /// gives an empty cache. So does a file that cannot be read or parsed, which comes back with
    /// the error for a warning and is replaced at the next save.
    pub fn open(git_dir: &Path) -> (Cache, Option<CacheError>) {
        let path = git_dir.join("mrel").join(CACHE_FILE);
        let (files, problem) = match read(&path) {
            Ok(files) => (files, None),
            Err(error) => (BTreeMap::new(), Some(error)),
        };
        let cache = Cache {
            path,
            files,
            added: BTreeMap::new(),
        };
        (cache, problem)
    }

    /// Returns the cached digest of `path` when `metadata` (taken from the open file) matches the
    /// metadata the digest was stored with.
    pub fn lookup(&self, path: &Path, metadata: &Metadata) -> Option<String> {
        let key = key(path)?;
        let entry = self.added.get(&key).or_else(|| self.files.get(&key))?;
        (entry.stamp == Stamp::of(metadata)).then(|| entry.sha256.clone())
    }

    /// Records the digest of `path`, read between the metadata `before` and `after`, starting at
    /// `started`. Nothing is recorded when the file changed while it was read or when its times
    /// are too close to `started` to tell a later write apart.
    pub fn store(
        &mut self,
        path: &Path,
        before: &Metadata,
        after: &Metadata,
        started: SystemTime,
        sha256: &str,
    ) {
        let stamp = Stamp::of(before);
        let Some(key) = key(path) else {
            return;
        };
        if stamp != Stamp::of(after) || stamp.is_racy(started) {
            tracing::debug!(path = %key, "not cached: the file changed recently");
            self.added.remove(&key);
            return;
        }
        self.added.insert(
            key,
            Entry {
                stamp,
                sha256: sha256.to_owned(),
            },
        );
    }

    /// Writes the entries stored since loading, merged into the cache file as it is now on disk
    /// (another process may have written it meanwhile), through a temporary file and a rename so
    /// that readers never see a partial file. Entries of files that no longer exist are dropped.
    pub fn save(&mut self) -> Result<(), CacheError> {
        if self.added.is_empty() {
            return Ok(());
        }
        let write_error = |source| CacheError::Write {
            path: self.path.clone(),
            source,
        };
        let folder = self
            .path
            .parent()
            .expect("the cache file lies in <git dir>/mrel");
        std::fs::create_dir_all(folder).map_err(write_error)?;

        let mut files = read(&self.path).unwrap_or_default();
        files.append(&mut self.added.clone());
        files.retain(|path, _| std::fs::symlink_metadata(path).is_ok());
        let json = serde_json::to_vec(&CacheFile {
            format: FORMAT.to_owned(),
            files: files.clone(),
        })
        .expect("the cache always serializes to JSON");

        let mut temporary = tempfile::Builder::new()
            .prefix(".digest-cache")
            .suffix(".tmp")
            .tempfile_in(folder)
            .map_err(write_error)?;
        temporary.write_all(&json).map_err(write_error)?;
        temporary
            .persist(&self.path)
            .map_err(|error| write_error(error.error))?;
        self.files = files;
        self.added.clear();
        Ok(())
    }
}

/// Returns the cache key of a file: its absolute path, without resolving symbolic links.
fn key(path: &Path) -> Option<String> {
    let absolute = std::path::absolute(path).ok()?;
    Some(absolute.to_string_lossy().into_owned())
}

fn read(path: &Path) -> Result<BTreeMap<String, Entry>, CacheError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(BTreeMap::new());
        }
        Err(source) => {
            return Err(CacheError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let invalid = |message: String| CacheError::Invalid {
        path: path.to_owned(),
        message,
    };
    let file: CacheFile =
        serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
    if file.format != FORMAT {
        return Err(invalid(format!(
            "format `{}`, expected `{FORMAT}`",
            file.format
        )));
    }
    Ok(file.files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i64, ctime_ns: i64) -> Stamp {
        Stamp {
            size: 1,
            mtime_ns,
            ctime_ns,
            inode: 2,
            device: 3,
        }
    }

    fn at(nanos: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).expect("positive time"))
    }

    #[test]
    fn racy_within_fine_margin() {
        let time = 1_700_000_000 * NANOS_PER_SECOND + 5;
        assert!(stamp(time, time).is_racy(at(time + 50_000_000)));
    }

    #[test]
    fn not_racy_past_fine_margin() {
        let time = 1_700_000_000 * NANOS_PER_SECOND + 5;
        assert!(!stamp(time, time).is_racy(at(time + 200_000_000)));
    }

    #[test]
    fn whole_second_ctime_needs_coarse_margin() {
        let time = 1_700_000_000 * NANOS_PER_SECOND;
        assert!(stamp(time, time).is_racy(at(time + 2 * NANOS_PER_SECOND)));
        assert!(!stamp(time, time).is_racy(at(time + 4 * NANOS_PER_SECOND)));
    }

    #[test]
    fn future_mtime_is_racy() {
        let time = 1_700_000_000 * NANOS_PER_SECOND + 5;
        assert!(stamp(time + NANOS_PER_SECOND, time).is_racy(at(time + NANOS_PER_SECOND / 2)));
    }

    /// Writes `content` and returns the file's metadata once its times are old enough to cache.
    fn settled_file(path: &Path, content: &[u8]) -> Metadata {
        std::fs::write(path, content).expect("write");
        std::thread::sleep(FINE_MARGIN * 2);
        let metadata = std::fs::metadata(path).expect("metadata");
        assert_ne!(
            metadata.ctime_nsec(),
            0,
            "the test needs a file system with sub-second timestamps"
        );
        metadata
    }

    #[test]
    fn saved_entry_is_found_after_reopening() {
        let git_dir = tempfile::tempdir().expect("temp folder");
        let file = git_dir.path().join("model.bin");
        let metadata = settled_file(&file, b"abc");

        let (mut cache, problem) = Cache::open(git_dir.path());
        assert!(problem.is_none());
        cache.store(&file, &metadata, &metadata, SystemTime::now(), "digest");
        cache.save().expect("save");

        let (reopened, _) = Cache::open(git_dir.path());
        assert_eq!(reopened.lookup(&file, &metadata).as_deref(), Some("digest"));
    }

    #[test]
    fn rewritten_file_misses_cache() {
        let git_dir = tempfile::tempdir().expect("temp folder");
        let file = git_dir.path().join("model.bin");
        let metadata = settled_file(&file, b"abc");
        let (mut cache, _) = Cache::open(git_dir.path());
        cache.store(&file, &metadata, &metadata, SystemTime::now(), "digest");

        // Same size, and the modification time put back: only the change time differs.
        std::fs::write(&file, b"abd").expect("rewrite");
        std::fs::File::options()
            .write(true)
            .open(&file)
            .expect("open")
            .set_modified(metadata.modified().expect("mtime"))
            .expect("set mtime");
        let rewritten = std::fs::metadata(&file).expect("metadata");

        assert_eq!(rewritten.len(), metadata.len());
        assert_eq!(rewritten.mtime_nsec(), metadata.mtime_nsec());
        assert_eq!(cache.lookup(&file, &rewritten), None);
    }

    #[test]
    fn racy_file_is_not_stored() {
        let git_dir = tempfile::tempdir().expect("temp folder");
        let file = git_dir.path().join("model.bin");
        std::fs::write(&file, b"abc").expect("write");
        let metadata = std::fs::metadata(&file).expect("metadata");
        let (mut cache, _) = Cache::open(git_dir.path());
        cache.store(&file, &metadata, &metadata, SystemTime::now(), "digest");
        assert_eq!(cache.lookup(&file, &metadata), None);
    }

    #[test]
    fn invalid_cache_file_is_reported_and_replaced() {
        let git_dir = tempfile::tempdir().expect("temp folder");
        std::fs::create_dir(git_dir.path().join("mrel")).expect("mkdir");
        std::fs::write(git_dir.path().join("mrel").join(CACHE_FILE), "{oops").expect("write");
        let file = git_dir.path().join("model.bin");
        let metadata = settled_file(&file, b"abc");

        let (mut cache, problem) = Cache::open(git_dir.path());
        assert!(matches!(problem, Some(CacheError::Invalid { .. })));
        cache.store(&file, &metadata, &metadata, SystemTime::now(), "digest");
        cache.save().expect("save");

        let (reopened, problem) = Cache::open(git_dir.path());
        assert!(problem.is_none());
        assert_eq!(reopened.lookup(&file, &metadata).as_deref(), Some("digest"));
    }

    #[test]
    fn entries_of_deleted_files_are_dropped() {
        let git_dir = tempfile::tempdir().expect("temp folder");
        let remaining = git_dir.path().join("remaining.bin");
        let deleted = git_dir.path().join("deleted.bin");
        let remaining_metadata = settled_file(&remaining, b"1");
        let deleted_metadata = settled_file(&deleted, b"2");
        let (mut cache, _) = Cache::open(git_dir.path());
        let now = SystemTime::now();
        cache.store(
            &remaining,
            &remaining_metadata,
            &remaining_metadata,
            now,
            "k",
        );
        cache.store(&deleted, &deleted_metadata, &deleted_metadata, now, "d");
        std::fs::remove_file(&deleted).expect("delete");
        cache.save().expect("save");

        let text = std::fs::read_to_string(git_dir.path().join("mrel").join(CACHE_FILE))
            .expect("read the cache file");
        assert!(text.contains("remaining.bin"), "{text}");
        assert!(!text.contains("deleted.bin"), "{text}");
    }
}
