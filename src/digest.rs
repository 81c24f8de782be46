//! SHA-256 digests of artifacts: each file streamed in blocks with constant memory, several files
//! at once on all cores, and a cache of digests keyed by file metadata ([`Cache`]).
//!
//! SHA-256 comes from the `sha2` crate (0.10). On x86_64 it checks at run time, through the
//! `cpufeatures` crate, whether the CPU has the SHA extensions (SHA-NI) and uses them when it
//! does, with the default features. Its `asm` feature only replaces the portable fallback for CPUs
//! without them by assembly, so mrel does not enable it.

mod cache;

use std::collections::HashSet;
use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

pub use cache::{Cache, CacheError};

/// Bytes read per block, so that a 2 GiB file takes 2,048 reads. Blocks from 64 KiB to 4 MiB
/// took the same CPU time to read and hash a 2 GiB file (AMD EPYC with SHA-NI, Linux 6.18).
const BLOCK_SIZE: usize = 1 << 20;

/// One entry of an artifact's digest list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactDigest {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    /// Size in bytes; absent for an empty folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Lowercase hex SHA-256 of the file's bytes; absent for an empty folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error(
        "artifact {path} not found: {source}; check `artifacts` in the release file and that training wrote it"
    )]
    Missing {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot read artifact {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("artifact {path} is a symbolic link; list the file it points to instead")]
    Symlink { path: String },
    #[error("artifact {path} is neither a file nor a folder")]
    Special { path: String },
}

/// Size and digest of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub size: u64,
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// Whether the digest came from the cache instead of reading the file.
    pub cached: bool,
}

/// A file to hash: the path that entries and messages show, and the file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileToHash {
    pub shown: String,
    pub path: PathBuf,
}

/// The files that an artifact path names on disk.
#[derive(Debug, PartialEq, Eq)]
pub enum Listing {
    File(FileToHash),
    /// A folder's files at any depth, sorted by path; never empty.
    Folder(Vec<FileToHash>),
    /// A folder without files, shown with a trailing `/`.
    EmptyFolder(String),
}

/// Lists what `relative` names under `root`: a file, or every file of a folder. Symbolic links and
/// special files are errors, at the top and inside folders.
pub fn list(root: &Path, relative: &str) -> Result<Listing, DigestError> {
    let full = root.join(relative);
    let metadata = std::fs::symlink_metadata(&full).map_err(|source| DigestError::Missing {
        path: relative.to_owned(),
        source,
    })?;
    if metadata.file_type().is_symlink() {
        return Err(DigestError::Symlink {
            path: relative.to_owned(),
        });
    }
    if metadata.is_file() {
        return Ok(Listing::File(FileToHash {
            shown: relative.to_owned(),
            path: full,
        }));
    }
    if !metadata.is_dir() {
        return Err(DigestError::Special {
            path: relative.to_owned(),
        });
    }

    let mut files = Vec::new();
    collect_files(&full, relative, &mut files)?;
    if files.is_empty() {
        return Ok(Listing::EmptyFolder(join(relative, "")));
    }
    files.sort_by(|a, b| a.shown.cmp(&b.shown));
    Ok(Listing::Folder(files))
}

/// Joins a relative folder and a name with `/`; the empty folder is the root.
fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() || folder.ends_with('/') {
        format!("{folder}{name}")
    } else {
        format!("{folder}/{name}")
    }
}

fn collect_files(
    folder: &Path,
    relative: &str,
    files: &mut Vec<FileToHash>,
) -> Result<(), DigestError> {
    let read_error = |source| DigestError::Read {
        path: relative.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(folder).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = join(relative, &name);
        let file_type = entry.file_type().map_err(read_error)?;
        if file_type.is_symlink() {
            return Err(DigestError::Symlink { path });
        } else if file_type.is_dir() {
            collect_files(&entry.path(), &path, files)?;
        } else if file_type.is_file() {
            files.push(FileToHash {
                shown: path,
                path: entry.path(),
            });
        } else {
            return Err(DigestError::Special { path });
        }
    }
    Ok(())
}

/// Hashes files on every core the process may use, each through the cache when there is one.
pub struct Hasher {
    cache: Option<Mutex<Cache>>,
    threads: usize,
}

impl Hasher {
    /// Creates a hasher with one worker per core that the process may run on (`taskset` and
    /// cgroup CPU limits lower the count), using `cache` where one is given.
    pub fn new(cache: Option<Cache>) -> Hasher {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        Hasher {
            cache: cache.map(Mutex::new),
            threads,
        }
    }

    /// Hashes artifacts given relative to `root`, in order. A folder yields one entry per file,
    /// sorted by path, or one entry without a digest when it is empty. A file that two listed
    /// artifacts share (a folder and a file inside it) is listed once.
    pub fn artifacts(
        &self,
        root: &Path,
        relatives: &[String],
    ) -> Result<Vec<ArtifactDigest>, DigestError> {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        let mut files = Vec::new();
        for relative in relatives {
            let listed = match list(root, relative)? {
                Listing::File(file) => vec![file],
                Listing::Folder(files) => files,
                Listing::EmptyFolder(path) => {
                    if seen.insert(path.clone()) {
                        entries.push(ArtifactDigest {
                            path,
                            size: None,
                            sha256: None,
                        });
                    }
                    continue;
                }
            };
            for file in listed {
                if seen.insert(file.shown.clone()) {
                    entries.push(ArtifactDigest {
                        path: file.shown.clone(),
                        size: None,
                        sha256: None,
                    });
                    files.push(file);
                }
            }
        }

        let mut digests = self.files(&files).into_iter();
        for entry in &mut entries {
            if entry.path.ends_with('/') {
                continue;
            }
            let digest = digests
                .next()
                .expect("one digest per listed file, in the same order")?;
            entry.size = Some(digest.size);
            entry.sha256 = Some(digest.sha256);
        }
        Ok(entries)
    }

    /// Hashes `files` with a shared work queue, so that one large file and many small ones keep
    /// every worker busy. Returns one result per file, in the order given.
    pub fn files(&self, files: &[FileToHash]) -> Vec<Result<FileDigest, DigestError>> {
        let workers = self.threads.min(files.len());
        if workers <= 1 {
            let mut buffer = vec![0u8; BLOCK_SIZE];
            return files
                .iter()
                .map(|file| self.file(file, &mut buffer))
                .collect();
        }

        let next = AtomicUsize::new(0);
        let results: Vec<OnceLock<Result<FileDigest, DigestError>>> =
            files.iter().map(|_| OnceLock::new()).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let mut buffer = vec![0u8; BLOCK_SIZE];
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(index) else {
                            break;
                        };
                        let _ = results[index].set(self.file(file, &mut buffer));
                    }
                });
            }
        });
        results
            .into_iter()
            .map(|result| {
                result
                    .into_inner()
                    .expect("the workers take every index of the queue")
            })
            .collect()
    }

    /// Hashes one file, or takes its digest from the cache while its metadata is unchanged.
    fn file(&self, file: &FileToHash, buffer: &mut [u8]) -> Result<FileDigest, DigestError> {
        let shown = || file.shown.clone();
        // O_NOFOLLOW rejects a symbolic link in place of the file. O_NONBLOCK keeps a FIFO from
        // blocking the open, and a regular file reads the same with it.
        let mut reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&file.path)
            .map_err(|source| match source.raw_os_error() {
                Some(libc::ELOOP) => DigestError::Symlink { path: shown() },
                _ if source.kind() == std::io::ErrorKind::NotFound => DigestError::Missing {
                    path: shown(),
                    source,
                },
                _ => DigestError::Read {
                    path: shown(),
                    source,
                },
            })?;
        let read_error = |source| DigestError::Read {
            path: shown(),
            source,
        };
        let before = reader.metadata().map_err(read_error)?;
        if !before.is_file() {
            return Err(DigestError::Special { path: shown() });
        }
        if let Some(cached) = self.lookup(&file.path, &before) {
            return Ok(cached);
        }

        let started = std::time::SystemTime::now();
        let (size, sha256) = stream(&mut reader, buffer).map_err(read_error)?;
        let after = reader.metadata().map_err(read_error)?;
        if let Some(cache) = &self.cache {
            let mut cache = cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            cache.store(&file.path, &before, &after, started, &sha256);
        }
        Ok(FileDigest {
            size,
            sha256,
            cached: false,
        })
    }

    fn lookup(&self, path: &Path, metadata: &Metadata) -> Option<FileDigest> {
        let cache = self.cache.as_ref()?;
        let cache = cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let sha256 = cache.lookup(path, metadata)?;
        Some(FileDigest {
            size: metadata.len(),
            sha256,
            cached: true,
        })
    }

    /// Writes the cache back when this hasher added to it; without a cache it does nothing.
    pub fn save_cache(&self) -> Result<(), CacheError> {
        match &self.cache {
            Some(cache) => cache
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .save(),
            None => Ok(()),
        }
    }
}

/// Streams a file through SHA-256 and returns its size and lowercase hex digest.
fn stream(reader: &mut File, buffer: &mut [u8]) -> std::io::Result<(u64, String)> {
    // Sequential access doubles the kernel's read-ahead window, which helps files that are not in
    // the page cache yet. The advice is only a hint, so its result is ignored.
    // SAFETY: posix_fadvise reads no memory of this process and the descriptor is open.
    unsafe { libc::posix_fadvise(reader.as_raw_fd(), 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = match reader.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex(&hasher.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn hash(root: &Path, relatives: &[&str]) -> Result<Vec<ArtifactDigest>, DigestError> {
        let relatives: Vec<String> = relatives.iter().map(|path| (*path).to_owned()).collect();
        Hasher::new(None).artifacts(root, &relatives)
    }

    #[test]
    fn file_digest_matches_known_value() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::write(folder.path().join("a.txt"), b"abc").expect("write");
        let entries = hash(folder.path(), &["a.txt"]).expect("digest");
        assert_eq!(entries[0].sha256.as_deref(), Some(ABC_SHA256));
        assert_eq!(entries[0].size, Some(3));
    }

    #[test]
    fn multi_block_file_matches_one_shot_digest() {
        let folder = tempfile::tempdir().expect("temp folder");
        let bytes: Vec<u8> = (0..BLOCK_SIZE * 3 + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(folder.path().join("big.bin"), &bytes).expect("write");
        let entries = hash(folder.path(), &["big.bin"]).expect("digest");
        assert_eq!(entries[0].sha256, Some(hex(&Sha256::digest(&bytes))));
        assert_eq!(entries[0].size, Some(bytes.len() as u64));
    }

    #[test]
    fn folder_entries_are_sorted() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::create_dir_all(folder.path().join("m/sub")).expect("mkdir");
        std::fs::write(folder.path().join("m/z.bin"), b"1").expect("write");
        std::fs::write(folder.path().join("m/sub/a.bin"), b"2").expect("write");
        let paths: Vec<String> = hash(folder.path(), &["m"])
            .expect("digest")
            .into_iter()
            .map(|entry| entry.path)
            .collect();
        assert_eq!(paths, ["m/sub/a.bin", "m/z.bin"]);
    }

    #[test]
    fn parallel_digests_keep_file_order() {
        let folder = tempfile::tempdir().expect("temp folder");
        let files: Vec<FileToHash> = (0..40)
            .map(|index| {
                let path = folder.path().join(format!("{index}.bin"));
                std::fs::write(&path, index.to_string().repeat(1000)).expect("write");
                FileToHash {
                    shown: format!("{index}.bin"),
                    path,
                }
            })
            .collect();
        let hasher = Hasher {
            cache: None,
            threads: 4,
        };
        let digests = hasher.files(&files);
        for (index, digest) in digests.into_iter().enumerate() {
            let expected = hex(&Sha256::digest(index.to_string().repeat(1000)));
            assert_eq!(digest.expect("digest").sha256, expected, "file {index}");
        }
    }

    #[test]
    fn empty_folder_is_entry_without_digest() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::create_dir(folder.path().join("empty")).expect("mkdir");
        let entries = hash(folder.path(), &["empty"]).expect("digest");
        assert_eq!(
            entries,
            [ArtifactDigest {
                path: "empty/".into(),
                size: None,
                sha256: None,
            }]
        );
    }

    #[test]
    fn overlapping_artifacts_list_file_once() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::create_dir(folder.path().join("m")).expect("mkdir");
        std::fs::write(folder.path().join("m/a.bin"), b"abc").expect("write");
        let paths: Vec<String> = hash(folder.path(), &["m", "m/a.bin"])
            .expect("digest")
            .into_iter()
            .map(|entry| entry.path)
            .collect();
        assert_eq!(paths, ["m/a.bin"]);
    }

    #[test]
    fn symlink_is_error() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::write(folder.path().join("a"), b"x").expect("write");
        std::os::unix::fs::symlink("a", folder.path().join("link")).expect("symlink");
        let error = hash(folder.path(), &["link"]).expect_err("symlink rejected");
        assert!(matches!(error, DigestError::Symlink { .. }));
    }

    #[test]
    fn symlink_opened_directly_is_error() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::write(folder.path().join("a"), b"x").expect("write");
        std::os::unix::fs::symlink("a", folder.path().join("link")).expect("symlink");
        let file = FileToHash {
            shown: "link".into(),
            path: folder.path().join("link"),
        };
        let result = Hasher::new(None).files(&[file]).remove(0);
        assert!(matches!(result, Err(DigestError::Symlink { .. })));
    }

    #[test]
    fn missing_artifact_is_error() {
        let folder = tempfile::tempdir().expect("temp folder");
        let error = hash(folder.path(), &["none.bin"]).expect_err("missing");
        assert!(matches!(error, DigestError::Missing { .. }));
    }
}
