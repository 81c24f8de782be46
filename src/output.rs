//! Writing a command's result to a file atomically. The text goes to a temporary file in the
//! target's folder, which is then renamed over the target. A reader sees the old file or the new
//! one, and a failure leaves no partial file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Replaces the file at `path` with `text`. An existing file keeps its permissions, and a new one
/// gets the permissions of a file that the user creates (0666 less the umask).
pub fn write_atomically(path: &Path, text: &str) -> Result<(), WriteError> {
    let error = |source: std::io::Error| WriteError {
        path: path.to_path_buf(),
        source,
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if path.is_dir() {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a folder; name a file",
        )));
    }
    let existing = std::fs::metadata(path)
        .ok()
        .map(|metadata| metadata.permissions());

    let mut temporary = tempfile::Builder::new()
        .prefix(".mrel-output-")
        .permissions(new_file_permissions())
        .tempfile_in(folder)
        .map_err(error)?;
    if let Some(permissions) = existing {
        temporary
            .as_file()
            .set_permissions(permissions)
            .map_err(error)?;
    }
    temporary.write_all(text.as_bytes()).map_err(error)?;
    temporary.as_file().sync_all().map_err(error)?;
    // Dropping the temporary file on an error above removes it, and so does a failed rename.
    temporary
        .persist(path)
        .map_err(|persist| error(persist.error))?;
    Ok(())
}

fn new_file_permissions() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    // open(2) applies the umask to this mode, as it does for any new file.
    std::fs::Permissions::from_mode(0o666)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_existing_file() {
        let folder = tempfile::tempdir().expect("temp folder");
        let path = folder.path().join("CHANGELOG.md");
        std::fs::write(&path, "old").expect("write");
        write_atomically(&path, "new").expect("atomic write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
    }

    #[test]
    fn write_into_missing_folder_fails_cleanly() {
        let folder = tempfile::tempdir().expect("temp folder");
        let path = folder.path().join("missing").join("CHANGELOG.md");
        let error = write_atomically(&path, "text").expect_err("no folder");
        assert!(error.to_string().contains("missing"), "{error}");
        assert!(!path.exists());
    }

    #[test]
    fn write_over_folder_leaves_no_temporary_file() {
        let folder = tempfile::tempdir().expect("temp folder");
        let target = folder.path().join("out");
        std::fs::create_dir(&target).expect("mkdir");
        write_atomically(&target, "text").expect_err("a folder");
        let entries: Vec<_> = std::fs::read_dir(folder.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("out")]);
    }
}
