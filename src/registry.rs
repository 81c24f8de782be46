//! The registry: every annotated tag in GTO's grammar, read into events and ordered.

use std::collections::HashMap;

use gix::ObjectId;
use gix::bstr::ByteSlice;

use crate::repo::{Repo, RepoError};
use crate::tags::{self, TagKind, TagName};

/// Identity and time of a tag's author.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagger {
    pub name: String,
    pub email: String,
    pub time: jiff::Timestamp,
}

/// One registry event: an annotated tag whose name follows the grammar.
#[derive(Clone, Debug)]
pub struct Event {
    /// The tag name without `refs/tags/`.
    pub tag: String,
    pub name: TagName,
    /// The id of the tag object (before peeling).
    pub tag_id: ObjectId,
    /// The commit the tag points at, after peeling tags that point at tags.
    pub commit: ObjectId,
    pub tagger: Option<Tagger>,
    /// The message without its signature.
    pub message: String,
    pub signed: bool,
}

/// All registry events of a repository, oldest first.
pub struct Registry {
    events: Vec<Event>,
    /// Lightweight tags whose names follow the grammar; they are not registry events.
    pub lightweight: Vec<String>,
    /// The greatest version released on each commit of each model, so that stage assignments
    /// resolve to versions without a scan per assignment.
    released_on: HashMap<(String, ObjectId), semver::Version>,
}

/// Nesting depth past which a chain of tags pointing at tags is treated as broken.
const MAX_PEEL_DEPTH: usize = 16;

impl Registry {
    /// Reads every tag under `refs/tags/` that follows the registry grammar. The tag objects are
    /// read on all cores, because inflating thousands of small objects dominates the time.
    pub fn load(repo: &Repo) -> Result<Registry, RepoError> {
        let git_error = |error: gix::Error| RepoError::Git(error.to_string());
        let references = repo.git.references().map_err(git_error)?;
        let mut candidates = Vec::new();
        for reference in references.tags().map_err(git_error)? {
            let reference = reference.map_err(|error| RepoError::Git(error.to_string()))?;
            let tag = reference.name().shorten().to_str_lossy().into_owned();
            let Some(name) = tags::parse(&tag) else {
                continue;
            };
            let Some(id) = reference.target().try_id().map(ToOwned::to_owned) else {
                continue;
            };
            candidates.push((tag, name, id));
        }

        let read = read_all(&repo.git, candidates)?;
        let mut events = Vec::new();
        let mut lightweight = Vec::new();
        for (tag, event) in read {
            match event {
                Some(event) => events.push(event),
                None => lightweight.push(tag),
            }
        }
        events.sort_by_cached_key(event_order);
        lightweight.sort();
        Ok(Registry::new(events, lightweight))
    }

    fn new(events: Vec<Event>, lightweight: Vec<String>) -> Registry {
        let mut released_on: HashMap<(String, ObjectId), semver::Version> = HashMap::new();
        for event in &events {
            if let TagKind::Register(version) = &event.name.kind {
                let key = (event.name.model.clone(), event.commit);
                match released_on.get(&key) {
                    Some(known) if known >= version => {}
                    _ => {
                        released_on.insert(key, version.clone());
                    }
                }
            }
        }
        Registry {
            events,
            lightweight,
            released_on,
        }
    }

    /// Returns all events, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Returns whether the model is deprecated: a `MODEL@deprecated` tag with no release or assignment
    /// after it, as in GTO.
    pub fn is_deprecated(&self, model: &str) -> bool {
        let mut deprecated = false;
        for event in self.model_events(model) {
            match event.name.kind {
                TagKind::Deprecate => deprecated = true,
                TagKind::Register(_) | TagKind::Assign(_) => deprecated = false,
                _ => {}
            }
        }
        deprecated
    }

    /// Keeps only the events tagged at or before `at`, to report a past moment.
    pub fn until(self, at: jiff::Timestamp) -> Registry {
        let events = self
            .events
            .into_iter()
            .filter(|event| {
                event
                    .tagger
                    .as_ref()
                    .is_some_and(|tagger| tagger.time <= at)
            })
            .collect();
        Registry::new(events, self.lightweight)
    }

    /// Returns the events of one model, oldest first.
    pub fn model_events<'a>(&'a self, model: &str) -> impl Iterator<Item = &'a Event> + 'a {
        let model = model.to_owned();
        self.events
            .iter()
            .filter(move |event| event.name.model == model)
    }

    /// Returns every model with at least one event, sorted.
    pub fn models(&self) -> Vec<String> {
        let mut models: Vec<String> = self
            .events
            .iter()
            .map(|event| event.name.model.clone())
            .collect();
        models.sort();
        models.dedup();
        models
    }

    /// Returns the release tags of a model's active versions: registered and not deregistered since.
    pub fn releases<'a>(&'a self, model: &str) -> Vec<(&'a semver::Version, &'a Event)> {
        let mut active: Vec<(&semver::Version, &Event)> = Vec::new();
        for event in self.model_events(model) {
            match &event.name.kind {
                TagKind::Register(version) => {
                    active.retain(|(known, _)| *known != version);
                    active.push((version, event));
                }
                TagKind::Deregister(version) => active.retain(|(known, _)| *known != version),
                _ => {}
            }
        }
        active.sort_by(|a, b| a.0.cmp(b.0));
        active
    }

    /// Returns whether `version` is registered and not deregistered since.
    pub fn is_active(&self, model: &str, version: &semver::Version) -> bool {
        self.releases(model)
            .iter()
            .any(|(known, _)| *known == version)
    }

    /// The greatest active version: SemVer order, so pre-releases sort below their release.
    pub fn latest<'a>(&'a self, model: &str) -> Option<(&'a semver::Version, &'a Event)> {
        self.releases(model).into_iter().next_back()
    }

    /// The greatest active version below `version`.
    pub fn previous<'a>(
        &'a self,
        model: &str,
        version: &semver::Version,
    ) -> Option<(&'a semver::Version, &'a Event)> {
        self.releases(model)
            .into_iter()
            .rev()
            .find(|(known, _)| *known < version)
    }

    /// The release tag of an exact version, active or not.
    pub fn release<'a>(&'a self, model: &str, version: &semver::Version) -> Option<&'a Event> {
        self.model_events(model)
            .filter(|event| event.name.kind == TagKind::Register(version.clone()))
            .last()
    }
}

/// Events sort by tagger time, which has one-second resolution. Within one second a release
/// comes before what can only follow it (assignments, then deregistrations and deprecations),
/// then counters and names keep the order stable.
fn event_order(event: &Event) -> (i64, u8, u64, String) {
    let seconds = event
        .tagger
        .as_ref()
        .map_or(0, |tagger| tagger.time.as_second());
    let rank = match event.name.kind {
        TagKind::Create | TagKind::Register(_) => 0,
        TagKind::Assign(_) | TagKind::Unassign(_) => 1,
        TagKind::Deregister(_) => 2,
        TagKind::Deprecate => 3,
    };
    (
        seconds,
        rank,
        event.name.counter.unwrap_or(0),
        event.tag.clone(),
    )
}

/// Reads the tag object `id`; `None` for a lightweight tag (one that points at a commit).
/// The release tags of one model, found from tag names alone. Commands that need one or two
/// releases use it instead of [`Registry::load`], which reads every tag object.
pub struct ReleaseIndex<'a> {
    repo: &'a Repo,
    /// Versions with a release tag and no deregistration tag, sorted by SemVer.
    registered: Vec<(semver::Version, Vec<ObjectId>)>,
    /// Versions with both tags, sorted, with whether the newest of them is a release.
    contested: Vec<(semver::Version, bool)>,
}

impl<'a> ReleaseIndex<'a> {
    /// Lists the model's release and deregistration tags. Only a version with both has its tag
    /// objects read, to tell which came last.
    pub fn load(repo: &'a Repo, model: &str) -> Result<ReleaseIndex<'a>, RepoError> {
        let git_error = |error: gix::Error| RepoError::Git(error.to_string());
        let prefix = format!("refs/tags/{}@v", model.replace(':', "="));
        let references = repo.git.references().map_err(git_error)?;
        let mut registered: HashMap<semver::Version, Vec<(String, TagName, ObjectId)>> =
            HashMap::new();
        let mut deregistered: HashMap<semver::Version, Vec<(String, TagName, ObjectId)>> =
            HashMap::new();
        for reference in references.prefixed(prefix.as_str()).map_err(git_error)? {
            let reference = reference.map_err(|error| RepoError::Git(error.to_string()))?;
            let tag = reference.name().shorten().to_str_lossy().into_owned();
            let Some(name) = tags::parse(&tag).filter(|name| name.model == model) else {
                continue;
            };
            let Some(id) = reference.target().try_id().map(ToOwned::to_owned) else {
                continue;
            };
            match name.kind.clone() {
                TagKind::Register(version) => {
                    registered.entry(version).or_default().push((tag, name, id))
                }
                TagKind::Deregister(version) => deregistered
                    .entry(version)
                    .or_default()
                    .push((tag, name, id)),
                _ => {}
            }
        }

        let mut plain = Vec::new();
        let mut contested = Vec::new();
        for (version, releases) in registered {
            let Some(removals) = deregistered.remove(&version) else {
                plain.push((version, releases.into_iter().map(|(_, _, id)| id).collect()));
                continue;
            };
            let mut events: Vec<Event> = Vec::new();
            for (tag, name, id) in releases.into_iter().chain(removals) {
                events.extend(read_tag(&repo.git, &tag, name, id)?);
            }
            events.sort_by_cached_key(event_order);
            let active = matches!(
                events.last().map(|event| &event.name.kind),
                Some(TagKind::Register(_))
            );
            contested.push((version, active));
        }
        plain.sort_by(|a, b| a.0.cmp(&b.0));
        contested.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ReleaseIndex {
            repo,
            registered: plain,
            contested,
        })
    }

    /// The greatest active version.
    pub fn latest(&self) -> Result<Option<semver::Version>, RepoError> {
        self.greatest_below(None)
    }

    /// The greatest active version below `version`.
    pub fn previous(
        &self,
        version: &semver::Version,
    ) -> Result<Option<semver::Version>, RepoError> {
        self.greatest_below(Some(version))
    }

    /// Walks down from the greatest version, confirming that a release tag is annotated (a
    /// lightweight tag is no registry event) only for the versions it reaches.
    fn greatest_below(
        &self,
        limit: Option<&semver::Version>,
    ) -> Result<Option<semver::Version>, RepoError> {
        let below = |version: &semver::Version| limit.is_none_or(|limit| version < limit);
        let contested = self
            .contested
            .iter()
            .rev()
            .find(|(version, active)| *active && below(version))
            .map(|(version, _)| version);
        for (version, ids) in self
            .registered
            .iter()
            .rev()
            .filter(|(version, _)| below(version))
        {
            if contested.is_some_and(|contested| contested > version) {
                break;
            }
            for id in ids {
                let header = self
                    .repo
                    .git
                    .find_header(*id)
                    .map_err(|error| RepoError::Git(error.to_string()))?;
                if header.kind() == gix::object::Kind::Tag {
                    return Ok(Some(version.clone()));
                }
            }
        }
        Ok(contested.cloned())
    }
}

/// Reads one registry tag by name; `None` where it does not exist, is lightweight or is not a
/// registry tag.
pub fn read_event(repo: &Repo, tag: &str) -> Result<Option<Event>, RepoError> {
    let git_error = |error: gix::Error| RepoError::Git(format!("tag {tag}: {error}"));
    let Some(name) = tags::parse(tag) else {
        return Ok(None);
    };
    let Some(reference) = repo
        .git
        .try_find_reference(format!("refs/tags/{tag}").as_str())
        .map_err(git_error)?
    else {
        return Ok(None);
    };
    let Some(id) = reference.target().try_id().map(ToOwned::to_owned) else {
        return Ok(None);
    };
    read_tag(&repo.git, tag, name, id)
}

/// Tags read by one thread: each tag's name and its event, `None` for a lightweight tag.
type ReadTags = Result<Vec<(String, Option<Event>)>, RepoError>;

/// Tags below this count are read on one thread, where starting more costs more than it saves.
const PARALLEL_THRESHOLD: usize = 256;

/// Reads the candidates' tag objects in chunks, one thread-local repository per thread, and
/// returns each tag with its event (`None` for a lightweight tag) in the order given.
fn read_all(git: &gix::Repository, candidates: Vec<(String, TagName, ObjectId)>) -> ReadTags {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if threads == 1 || candidates.len() < PARALLEL_THRESHOLD {
        return candidates
            .into_iter()
            .map(|(tag, name, id)| Ok((tag.clone(), read_tag(git, &tag, name, id)?)))
            .collect();
    }
    // Without gix's `parallel` feature a repository handle cannot cross threads, so each thread
    // opens its own; an open costs about a millisecond.
    let git_dir = git.git_dir().to_path_buf();
    let chunk_size = candidates.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(String, TagName, ObjectId)>> = Vec::new();
    let mut rest = candidates;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk_size.min(rest.len()));
        chunks.push(rest);
        rest = tail;
    }
    let results: Vec<ReadTags> = std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let git_dir = &git_dir;
                scope.spawn(move || {
                    let local =
                        gix::open(git_dir).map_err(|error| RepoError::Git(error.to_string()))?;
                    chunk
                        .into_iter()
                        .map(|(tag, name, id)| Ok((tag.clone(), read_tag(&local, &tag, name, id)?)))
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a tag reader thread does not panic"))
            .collect()
    });
    let mut all = Vec::new();
    for result in results {
        all.extend(result?);
    }
    Ok(all)
}

fn read_tag(
    git: &gix::Repository,
    tag: &str,
    name: TagName,
    id: ObjectId,
) -> Result<Option<Event>, RepoError> {
    let git_error = |error: gix::Error| RepoError::Git(format!("tag {tag}: {error}"));
    let object = git.find_object(id).map_err(git_error)?;
    if object.kind != gix::object::Kind::Tag {
        return Ok(None);
    }
    let decoded = gix::objs::TagRef::from_bytes(&object.data, id.kind()).map_err(|error| {
        RepoError::Git(format!("tag {tag}: cannot decode the tag object: {error}"))
    })?;
    let tagger = decoded.tagger().ok().flatten().and_then(|signature| {
        let time = signature.time().ok()?;
        Some(Tagger {
            name: signature.name.to_str_lossy().trim().to_owned(),
            email: signature.email.to_str_lossy().trim().to_owned(),
            time: jiff::Timestamp::from_second(time.seconds).ok()?,
        })
    });
    let message = decoded.message.to_str_lossy().into_owned();
    let signed = decoded.signature.is_some();
    // The tag header names the kind of its target, so a tag on a commit needs no second read.
    let mut target = decoded.target();
    let mut target_kind = decoded.target_kind;
    let mut depth = 0;
    while target_kind == gix::object::Kind::Tag && depth < MAX_PEEL_DEPTH {
        let object = git.find_object(target).map_err(git_error)?;
        let inner = gix::objs::TagRef::from_bytes(&object.data, target.kind())
            .map_err(|error| RepoError::Git(format!("tag {tag}: {error}")))?;
        target = inner.target();
        target_kind = inner.target_kind;
        depth += 1;
    }
    if target_kind != gix::object::Kind::Commit {
        return Err(RepoError::Git(format!(
            "tag {tag} does not point at a commit; delete or fix it with git"
        )));
    }
    Ok(Some(Event {
        tag: tag.to_owned(),
        name,
        tag_id: id,
        commit: target,
        tagger,
        message,
        signed,
    }))
}

impl Registry {
    /// Returns one more than the highest counter on any tag of the model, as GTO numbers events.
    pub fn next_counter(&self, model: &str) -> u64 {
        self.model_events(model)
            .filter_map(|event| event.name.counter)
            .max()
            .map_or(1, |counter| counter + 1)
    }

    /// The version released on `commit`: the greatest one where several share it.
    pub fn version_at<'a>(
        &'a self,
        model: &str,
        commit: gix::ObjectId,
    ) -> Option<&'a semver::Version> {
        self.released_on.get(&(model.to_owned(), commit))
    }

    /// Assignments to and removals from `stage`, oldest first, each with the version it names
    /// (`None` for an unassignment or a commit without a release).
    pub fn stage_history<'a>(
        &'a self,
        model: &str,
        stage: &str,
    ) -> Vec<(&'a Event, Option<&'a semver::Version>)> {
        self.model_events(model)
            .filter_map(|event| match &event.name.kind {
                TagKind::Assign(name) if name == stage => {
                    Some((event, self.version_at(model, event.commit)))
                }
                TagKind::Unassign(name) if name == stage => Some((event, None)),
                _ => None,
            })
            .collect()
    }

    /// The version in `stage` now: the latest assignment, unless an unassignment followed it.
    pub fn in_stage<'a>(
        &'a self,
        model: &str,
        stage: &str,
    ) -> Option<(&'a Event, &'a semver::Version)> {
        match self.stage_history(model, stage).into_iter().next_back() {
            Some((event, Some(version))) if matches!(event.name.kind, TagKind::Assign(_)) => {
                Some((event, version))
            }
            _ => None,
        }
    }
}
