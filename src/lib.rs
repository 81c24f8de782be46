//! mrel releases machine-learning models from a git repository. It trains a model declared in a
//! `release.yaml` and compares its metrics with the previous release. Then it applies quality
//! gates, renders release notes and records the release as a signed annotated tag in GTO's grammar.

pub mod card;
pub mod changelog;
pub mod commands;
pub mod compare;
pub mod digest;
pub mod gates;
pub mod hooks;
pub mod metrics;
pub mod notes;
pub mod output;
pub mod record;
pub mod registry;
pub mod release_file;
pub mod repo;
pub mod report;
pub mod review;
pub mod run_record;
pub mod signature;
pub mod tagging;
pub mod tags;
pub mod templates;
pub mod training;
pub mod verify;
pub mod workspace;
pub mod yaml;
