//! Tag names in GTO's grammar, which GTO and DVC Studio read as a model registry:
//!
//! | event | tag |
//! | --- | --- |
//! | register a version | `NAME@vSEMVER` |
//! | deregister a version | `NAME@vSEMVER!` |
//! | assign a stage | `NAME#STAGE#N` |
//! | unassign a stage | `NAME#STAGE!#N` |
//! | deprecate the model | `NAME@deprecated` |
//!
//! Any of them may carry a `#N` counter. GTO writes a model kept in a folder as `dir:name`, and
//! `dir=name` in tags, because `:` is not allowed in a git ref.

use std::fmt;

use crate::release_file::check_model_name;

/// Event that a registry tag records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TagKind {
    Register(semver::Version),
    Deregister(semver::Version),
    Assign(String),
    Unassign(String),
    Deprecate,
    /// GTO's `NAME@created`, which marks an artifact without a version.
    Create,
}

impl TagKind {
    pub fn event_name(&self) -> &'static str {
        match self {
            TagKind::Register(_) => "release",
            TagKind::Deregister(_) => "deregister",
            TagKind::Assign(_) => "assign",
            TagKind::Unassign(_) => "unassign",
            TagKind::Deprecate => "deprecate",
            TagKind::Create => "create",
        }
    }
}

/// A registry tag name, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagName {
    /// The model name, with GTO's `dir=` prefix written as `dir:`.
    pub model: String,
    pub kind: TagKind,
    pub counter: Option<u64>,
}

impl fmt::Display for TagName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let model = self.model.replace(':', "=");
        match &self.kind {
            TagKind::Register(version) => write!(formatter, "{model}@v{version}")?,
            TagKind::Deregister(version) => write!(formatter, "{model}@v{version}!")?,
            TagKind::Assign(stage) => write!(formatter, "{model}#{stage}")?,
            TagKind::Unassign(stage) => write!(formatter, "{model}#{stage}!")?,
            TagKind::Deprecate => write!(formatter, "{model}@deprecated")?,
            TagKind::Create => write!(formatter, "{model}@created")?,
        }
        if let Some(counter) = self.counter {
            write!(formatter, "#{counter}")?;
        }
        Ok(())
    }
}

/// The release tag of a version, `MODEL@vVERSION`.
pub fn release_tag(model: &str, version: &semver::Version) -> String {
    TagName {
        model: model.to_owned(),
        kind: TagKind::Register(version.clone()),
        counter: None,
    }
    .to_string()
}

/// Parses a tag name (without `refs/tags/`); `None` for tags outside the registry grammar.
pub fn parse(name: &str) -> Option<TagName> {
    let split = name.find(['@', '#'])?;
    let (model_part, rest) = name.split_at(split);
    let model = parse_model(model_part)?;

    let (body, counter) = match rest.rfind('#') {
        Some(at) if at > 0 && is_counter(&rest[at + 1..]) => {
            (&rest[..at], rest[at + 1..].parse::<u64>().ok())
        }
        _ => (rest, None),
    };

    let kind = if let Some(version) = body.strip_prefix("@v") {
        let (version, cancel) = match version.strip_suffix('!') {
            Some(version) => (version, true),
            None => (version, false),
        };
        let version = semver::Version::parse(version).ok()?;
        if cancel {
            TagKind::Deregister(version)
        } else {
            TagKind::Register(version)
        }
    } else if body == "@deprecated" {
        TagKind::Deprecate
    } else if body == "@created" {
        TagKind::Create
    } else if let Some(stage) = body.strip_prefix('#') {
        let (stage, cancel) = match stage.strip_suffix('!') {
            Some(stage) => (stage, true),
            None => (stage, false),
        };
        if check_model_name(stage).is_err() {
            return None;
        }
        if cancel {
            TagKind::Unassign(stage.to_owned())
        } else {
            TagKind::Assign(stage.to_owned())
        }
    } else {
        return None;
    };
    Some(TagName {
        model,
        kind,
        counter,
    })
}

fn parse_model(part: &str) -> Option<String> {
    let (folder, name) = match part.split_once('=') {
        Some((folder, name)) => (Some(folder), name),
        None => (None, part),
    };
    check_model_name(name).ok()?;
    match folder {
        Some(folder)
            if !folder.is_empty()
                && folder
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')) =>
        {
            Some(format!("{folder}:{name}"))
        }
        Some(_) => None,
        None => Some(name.to_owned()),
    }
}

fn is_counter(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> semver::Version {
        semver::Version::parse(text).expect("valid version")
    }

    #[test]
    fn tag_names_parse() {
        let cases = [
            (
                "diabetes@v1.2.0",
                "diabetes",
                TagKind::Register(version("1.2.0")),
                None,
            ),
            (
                "diabetes@v1.1.0!",
                "diabetes",
                TagKind::Deregister(version("1.1.0")),
                None,
            ),
            (
                "diabetes#production#3",
                "diabetes",
                TagKind::Assign("production".into()),
                Some(3),
            ),
            (
                "diabetes#production!#4",
                "diabetes",
                TagKind::Unassign("production".into()),
                Some(4),
            ),
            (
                "diabetes#prod",
                "diabetes",
                TagKind::Assign("prod".into()),
                None,
            ),
            ("diabetes@deprecated", "diabetes", TagKind::Deprecate, None),
            (
                "models=churn@v0.1.0-rc.1",
                "models:churn",
                TagKind::Register(version("0.1.0-rc.1")),
                None,
            ),
            (
                "a/b@v1.0.0#2",
                "a/b",
                TagKind::Register(version("1.0.0")),
                Some(2),
            ),
        ];
        for (name, model, kind, counter) in cases {
            let parsed = parse(name).unwrap_or_else(|| panic!("{name} should parse"));
            assert_eq!(parsed.model, model, "model of {name}");
            assert_eq!(parsed.kind, kind, "kind of {name}");
            assert_eq!(parsed.counter, counter, "counter of {name}");
            assert_eq!(parsed.to_string(), name, "round trip of {name}");
        }
    }

    #[test]
    fn foreign_tags_do_not_parse() {
        for name in [
            "v1.0.0",
            "release-2024",
            "diabetes@1.0.0",
            "diabetes@vx",
            "@v1.0.0",
            "a#",
        ] {
            assert_eq!(parse(name), None, "{name}");
        }
    }
}
