//! Access to the git repository through gix: the index, the work tree's state, objects at a
//! revision, and registry tags.

use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::ByteSlice;

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("not inside a git repository ({path}): {message}")]
    NotFound { path: String, message: String },
    #[error(
        "the repository at {path} is owned by another user, so its configuration is not trusted; \
         if you trust it, run `git config --global --add safe.directory {path}`"
    )]
    Untrusted { path: String },
    #[error("the repository at {path} is bare; mrel needs a work tree")]
    Bare { path: String },
    #[error("the repository has no commit yet; commit the release file first")]
    NoCommit,
    #[error("revision `{revision}` not found: {message}")]
    Revision { revision: String, message: String },
    #[error("git: {0}")]
    Git(String),
}

fn git_error(error: impl std::fmt::Display) -> RepoError {
    RepoError::Git(error.to_string())
}

/// An open repository with a work tree.
pub struct Repo {
    pub git: gix::Repository,
    root: PathBuf,
}

impl Repo {
    /// Opens the repository that contains `start`, rejecting one owned by another user.
    pub fn discover(start: &Path) -> Result<Repo, RepoError> {
        let git = gix::discover(start).map_err(|error| RepoError::NotFound {
            path: start.display().to_string(),
            message: error.to_string(),
        })?;
        let Some(root) = git.workdir().map(Path::to_path_buf) else {
            return Err(RepoError::Bare {
                path: git.git_dir().display().to_string(),
            });
        };
        if git.git_dir_trust() != gix::sec::Trust::Full {
            return Err(RepoError::Untrusted {
                path: root.display().to_string(),
            });
        }
        Ok(Repo { git, root })
    }

    /// Returns the root of the work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the git directory, where mrel keeps its logs.
    pub fn git_dir(&self) -> &Path {
        self.git.git_dir()
    }

    /// Paths of all files in the index, relative to the root, with `/` separators.
    pub fn tracked_files(&self) -> Result<Vec<String>, RepoError> {
        let index = self.git.index_or_empty().map_err(git_error)?;
        Ok(index
            .entries()
            .iter()
            .map(|entry| entry.path(&index).to_str_lossy().into_owned())
            .collect())
    }

    /// Reads the staged content of `path`, or `None` where the index has no such file.
    pub fn staged_file(&self, path: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let index = self.git.index_or_empty().map_err(git_error)?;
        let Some(entry) = index.entry_by_path(path.as_bytes().as_bstr()) else {
            return Ok(None);
        };
        let object = self.git.find_object(entry.id).map_err(git_error)?;
        Ok(Some(object.data.clone()))
    }

    /// Returns whether tracked files differ from HEAD, in the index or in the work tree. Untracked files
    /// do not count.
    pub fn is_dirty(&self) -> Result<bool, RepoError> {
        self.git.is_dirty().map_err(git_error)
    }

    /// Returns the commit that HEAD points at.
    pub fn head_commit(&self) -> Result<ObjectId, RepoError> {
        let head = self.git.head_id().map_err(|_| RepoError::NoCommit)?;
        Ok(head.detach())
    }

    /// Resolves a revision (a ref name or an object id) to the commit it names.
    pub fn resolve_commit(&self, revision: &str) -> Result<ObjectId, RepoError> {
        let not_found = |message: String| RepoError::Revision {
            revision: revision.to_owned(),
            message,
        };
        let id = self
            .git
            .rev_parse_single(revision.as_bytes().as_bstr())
            .map_err(|error| not_found(error.to_string()))?;
        let object = id.object().map_err(|error| not_found(error.to_string()))?;
        let commit = object
            .peel_to_commit()
            .map_err(|error| not_found(error.to_string()))?;
        Ok(commit.id)
    }

    /// Reads the content of `path` in the tree of `commit`, or `None` where it has no such file.
    pub fn file_at(&self, commit: ObjectId, path: &str) -> Result<Option<Vec<u8>>, RepoError> {
        let commit = self.git.find_commit(commit).map_err(git_error)?;
        let tree = commit.tree().map_err(git_error)?;
        let Some(entry) = tree.lookup_entry_by_path(path).map_err(git_error)? else {
            return Ok(None);
        };
        let object = entry.object().map_err(git_error)?;
        if object.kind != gix::object::Kind::Blob {
            return Ok(None);
        }
        Ok(Some(object.data.clone()))
    }

    /// Returns the best common ancestor of two commits, or `None` where their histories share no
    /// commit (unrelated histories, or a shallow clone that lacks the common part).
    pub fn merge_base(&self, one: ObjectId, two: ObjectId) -> Result<Option<ObjectId>, RepoError> {
        let base = self.git.merge_base(one, two).map_err(git_error)?;
        Ok(base.map(gix::Id::detach))
    }

    /// Paths and blob ids of the regular files named `name`, in any folder of the tree of
    /// `commit`. Symbolic links and submodules are left out.
    pub fn files_named_at(
        &self,
        commit: ObjectId,
        name: &str,
    ) -> Result<std::collections::BTreeMap<String, ObjectId>, RepoError> {
        let commit = self.git.find_commit(commit).map_err(git_error)?;
        let tree = commit.tree().map_err(git_error)?;
        let entries = tree.traverse().breadthfirst.files().map_err(git_error)?;
        Ok(entries
            .into_iter()
            .filter(|entry| entry.mode.is_blob())
            .map(|entry| (entry.filepath.to_str_lossy().into_owned(), entry.oid))
            .filter(|(path, _)| path.rsplit('/').next() == Some(name))
            .collect())
    }

    /// Reads the content of the blob `id`.
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>, RepoError> {
        let object = self.git.find_object(id).map_err(git_error)?;
        Ok(object.data.clone())
    }
}
