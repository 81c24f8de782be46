//! SHA-256 digests of artifacts, streamed in blocks so that files larger than memory work.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Bytes read per block; large blocks keep system calls rare on multi-gigabyte files.
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

/// Hashes a file or a folder given relative to `root`. A folder yields one entry per file, sorted
/// by path, or one entry without a digest when it is empty.
pub fn artifact(root: &Path, relative: &str) -> Result<Vec<ArtifactDigest>, DigestError> {
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
        let (size, sha256) = file(&full, relative)?;
        return Ok(vec![ArtifactDigest {
            path: relative.to_owned(),
            size: Some(size),
            sha256: Some(sha256),
        }]);
    }
    if !metadata.is_dir() {
        return Err(DigestError::Special {
            path: relative.to_owned(),
        });
    }

    let mut files = Vec::new();
    collect_files(&full, relative, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Ok(vec![ArtifactDigest {
            path: format!("{relative}/"),
            size: None,
            sha256: None,
        }]);
    }
    files
        .into_iter()
        .map(|(path, full)| {
            let (size, sha256) = file(&full, &path)?;
            Ok(ArtifactDigest {
                path,
                size: Some(size),
                sha256: Some(sha256),
            })
        })
        .collect()
}

fn collect_files(
    folder: &Path,
    relative: &str,
    files: &mut Vec<(String, PathBuf)>,
) -> Result<(), DigestError> {
    let read_error = |source| DigestError::Read {
        path: relative.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(folder).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{relative}/{name}");
        let file_type = entry.file_type().map_err(read_error)?;
        if file_type.is_symlink() {
            return Err(DigestError::Symlink { path });
        } else if file_type.is_dir() {
            collect_files(&entry.path(), &path, files)?;
        } else if file_type.is_file() {
            files.push((path, entry.path()));
        } else {
            return Err(DigestError::Special { path });
        }
    }
    Ok(())
}

/// Streams one file through SHA-256 and returns its size and lowercase hex digest.
pub fn file(path: &Path, shown: &str) -> Result<(u64, String), DigestError> {
    let read_error = |source| DigestError::Read {
        path: shown.to_owned(),
        source,
    };
    let mut reader = File::open(path).map_err(read_error)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BLOCK_SIZE];
    let mut size = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(read_error(error)),
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

    #[test]
    fn file_digest_matches_known_value() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::write(folder.path().join("a.txt"), b"abc").expect("write");
        let entries = artifact(folder.path(), "a.txt").expect("digest");
        assert_eq!(
            entries[0].sha256.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn folder_entries_are_sorted() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::create_dir_all(folder.path().join("m/sub")).expect("mkdir");
        std::fs::write(folder.path().join("m/z.bin"), b"1").expect("write");
        std::fs::write(folder.path().join("m/sub/a.bin"), b"2").expect("write");
        let paths: Vec<String> = artifact(folder.path(), "m")
            .expect("digest")
            .into_iter()
            .map(|entry| entry.path)
            .collect();
        assert_eq!(paths, ["m/sub/a.bin", "m/z.bin"]);
    }

    #[test]
    fn symlink_is_error() {
        let folder = tempfile::tempdir().expect("temp folder");
        std::fs::write(folder.path().join("a"), b"x").expect("write");
        std::os::unix::fs::symlink("a", folder.path().join("link")).expect("symlink");
        let error = artifact(folder.path(), "link").expect_err("symlink rejected");
        assert!(matches!(error, DigestError::Symlink { .. }));
    }

    #[test]
    fn missing_artifact_is_error() {
        let folder = tempfile::tempdir().expect("temp folder");
        let error = artifact(folder.path(), "none.bin").expect_err("missing");
        assert!(matches!(error, DigestError::Missing { .. }));
    }
}
