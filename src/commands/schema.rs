//! `mrel schema`: prints the JSON Schema of the release file, for editors and other tools.

use crate::commands::print;

/// The JSON Schema (draft 2020-12) of `release.yaml`, built into the binary.
pub const RELEASE_SCHEMA: &str = include_str!("../../schema/release.schema.json");

pub fn run() {
    print(RELEASE_SCHEMA);
}
