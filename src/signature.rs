//! Checking the signature of a tag object as `git verify-tag` does. SSH signatures are checked
//! against the allowed signers file (`gpg.ssh.allowedSignersFile`, and `gpg.ssh.revocationFile`
//! where it exists), OpenPGP and X.509 signatures against the keyring. The programs and the
//! minimum trust level come from git's configuration (`gpg.program`, `gpg.<format>.program`,
//! `gpg.minTrustLevel`). gix runs the verifier, and this module turns git's configuration into
//! its options and its outcome into one status.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use gix::bstr::{BStr, ByteSlice};
use gix::objs::signature::Format;
use gix::objs::signature::verify::{Options, Outcome, Status as VerifierStatus, TrustLevel};

/// The verdict on a tag's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The signature matches the tag, by a key that git's configuration trusts.
    Good,
    /// The signature does not match the tag's bytes, or its key expired or was revoked.
    Bad,
    /// The signature matches the tag, but its key is not in the allowed signers file (SSH) or
    /// not in the keyring (OpenPGP).
    UnknownKey,
    /// The signature matches and its key is known, but trusted less than `gpg.minTrustLevel`.
    Untrusted,
    /// The tag carries no signature.
    Unsigned,
    /// The verifier is not configured or could not run.
    Error,
}

impl Status {
    /// Returns the status as output shows it.
    pub fn label(self) -> &'static str {
        match self {
            Status::Good => "good",
            Status::Bad => "bad",
            Status::UnknownKey => "unknown key",
            Status::Untrusted => "untrusted",
            Status::Unsigned => "unsigned",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.label())
    }
}

/// The outcome of checking one tag's signature.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Verdict {
    pub status: Status,
    /// `ssh`, `openpgp` or `x509`; absent for an unsigned tag.
    pub format: Option<&'static str>,
    /// The principal that the allowed signers file names (SSH) or the key's user ID (OpenPGP).
    pub signer: Option<String>,
    /// The signing key's fingerprint, or its key ID where the verifier printed no fingerprint.
    pub key: Option<String>,
    /// The verifier's finding, or the reason it could not run, in one sentence.
    pub detail: String,
}

impl Verdict {
    pub fn is_good(&self) -> bool {
        self.status == Status::Good
    }

    fn unsigned() -> Verdict {
        Verdict {
            status: Status::Unsigned,
            format: None,
            signer: None,
            key: None,
            detail: "the tag carries no signature".to_owned(),
        }
    }

    fn error(format: Option<Format>, detail: String) -> Verdict {
        Verdict {
            status: Status::Error,
            format: format.map(format_name),
            signer: None,
            key: None,
            detail,
        }
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::OpenPgp => "openpgp",
        Format::X509 => "x509",
        Format::Ssh => "ssh",
    }
}

/// Checks tag signatures with the configuration of one repository.
pub struct Verifier<'repo> {
    repo: &'repo gix::Repository,
}

impl<'repo> Verifier<'repo> {
    pub fn new(repo: &'repo gix::Repository) -> Verifier<'repo> {
        Verifier { repo }
    }

    /// Checks the signature of a registry event. An event read without a signature is unsigned
    /// at once, which spares reading its tag object a second time.
    pub fn verify_event(&self, event: &crate::registry::Event) -> Verdict {
        if event.signed {
            self.verify_tag_id(event.tag_id)
        } else {
            Verdict::unsigned()
        }
    }

    /// Reads the tag object `id` and checks its signature.
    pub fn verify_tag_id(&self, id: gix::ObjectId) -> Verdict {
        match self.repo.find_object(id) {
            Ok(object) => self.verify_tag(&object.data),
            Err(error) => Verdict::error(None, format!("cannot read the tag object {id}: {error}")),
        }
    }

    /// Checks the signature of a tag object, given as its raw bytes (the content of `git cat-file
    /// tag`). The signature covers every byte before it, so any change to the header, the notes
    /// or the record after signing makes it bad.
    pub fn verify_tag(&self, raw: &[u8]) -> Verdict {
        let Some((signature, signed_data)) = gix::objs::TagRefIter::signature(raw) else {
            return Verdict::unsigned();
        };
        let format = signature.format;
        let settings = match self.settings(format) {
            Ok(settings) => settings,
            Err(message) => return Verdict::error(Some(format), message),
        };
        let program = settings.program.to_string_lossy().into_owned();
        let options = settings.options(self.tagger_time(raw));
        match signed_data.verify(signature.data, options) {
            Ok(outcome) => classify(format, &outcome, &settings),
            Err(error) => Verdict::error(
                Some(format),
                format!("{program} could not verify the signature: {error}"),
            ),
        }
    }

    /// Returns the tagger's time, which git passes to `ssh-keygen` so that a key valid when the
    /// tag was signed still verifies after it expires. A tag without a tagger gets the current
    /// time.
    fn tagger_time(&self, raw: &[u8]) -> gix::date::Time {
        gix::objs::TagRef::from_bytes(raw, self.repo.object_hash())
            .ok()
            .and_then(|tag| tag.tagger().ok().flatten())
            .and_then(|tagger| tagger.time().ok())
            .unwrap_or_else(gix::date::Time::now_utc)
    }

    /// Reads the verifier settings of `format` from git's configuration.
    fn settings(&self, format: Format) -> Result<Settings, String> {
        let config = self.repo.config_snapshot();
        let minimum_trust = match config.string("gpg.minTrustLevel") {
            Some(value) => TrustLevel::from_bytes(value.trim()).ok_or_else(|| {
                format!(
                    "gpg.minTrustLevel has the invalid value `{value}`; set it to undefined, \
                     never, marginal, fully or ultimate"
                )
            })?,
            None => TrustLevel::Undefined,
        };
        let path = |key: &str| {
            config
                .trusted_path(key)
                .map_err(|error| format!("cannot read {key} from git's configuration: {error}"))
        };
        let program = |keys: &[&str], default: &str| -> Result<OsString, String> {
            for key in keys {
                if let Some(program) = path(key)? {
                    return Ok(program.into_os_string());
                }
            }
            Ok(default.into())
        };

        let (program, allowed_signers, revocation_file) = match format {
            Format::OpenPgp => (
                program(&["gpg.openpgp.program", "gpg.program"], "gpg")?,
                None,
                None,
            ),
            Format::X509 => (program(&["gpg.x509.program"], "gpgsm")?, None, None),
            Format::Ssh => {
                let allowed_signers = path("gpg.ssh.allowedSignersFile")?.ok_or_else(|| {
                    "gpg.ssh.allowedSignersFile is not configured, so SSH signatures cannot be \
                     checked; set it to a file that lists the signers you trust, as for \
                     `git verify-tag`"
                        .to_owned()
                })?;
                let allowed_signers = self.in_repository(allowed_signers);
                if !allowed_signers.is_file() {
                    return Err(format!(
                        "the allowed signers file {} (gpg.ssh.allowedSignersFile) does not exist",
                        allowed_signers.display()
                    ));
                }
                let revocation_file = path("gpg.ssh.revocationFile")?
                    .map(|file| self.in_repository(file))
                    .filter(|file| file.exists());
                (
                    program(&["gpg.ssh.program"], "ssh-keygen")?,
                    Some(allowed_signers),
                    revocation_file,
                )
            }
        };
        Ok(Settings {
            format,
            program,
            allowed_signers,
            revocation_file,
            minimum_trust,
        })
    }

    /// Resolves a relative configured path against the work tree, where git runs the verifier.
    fn in_repository(&self, path: PathBuf) -> PathBuf {
        if path.is_absolute() {
            path
        } else {
            self.repo
                .workdir()
                .unwrap_or_else(|| self.repo.git_dir())
                .join(path)
        }
    }
}

/// The verifier settings for one signature format.
struct Settings {
    format: Format,
    program: OsString,
    /// SSH only.
    allowed_signers: Option<PathBuf>,
    revocation_file: Option<PathBuf>,
    minimum_trust: TrustLevel,
}

impl Settings {
    fn options(&self, verify_time: gix::date::Time) -> Options {
        let program = self.program.clone();
        match self.format {
            Format::OpenPgp => Options::OpenPgp {
                program,
                program_arguments: Vec::new(),
                environment: Vec::new(),
                minimum_trust: self.minimum_trust,
            },
            Format::X509 => Options::X509 {
                program,
                program_arguments: Vec::new(),
                environment: Vec::new(),
                minimum_trust: self.minimum_trust,
            },
            Format::Ssh => Options::Ssh {
                program,
                program_arguments: Vec::new(),
                environment: Vec::new(),
                allowed_signers: self
                    .allowed_signers
                    .clone()
                    .expect("SSH settings always name the allowed signers file"),
                revocation_file: self.revocation_file.clone(),
                verify_time,
                minimum_trust: self.minimum_trust,
            },
        }
    }
}

/// Turns the verifier's outcome into a verdict. `is_valid()` decides a good signature, as it does
/// for git; the other fields tell the failures apart.
fn classify(format: Format, outcome: &Outcome, settings: &Settings) -> Verdict {
    let text = |value: &Option<gix::bstr::BString>| {
        value
            .as_ref()
            .map(|value| value.to_str_lossy().trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let signer = text(&outcome.signer);
    let key = text(&outcome.fingerprint).or_else(|| text(&outcome.key));
    let name = format_name(format);
    let key_text = key.as_deref().unwrap_or("of unknown fingerprint");
    let verifier_output = first_line(outcome.output.as_bstr());

    let (status, detail) = if outcome.is_valid() {
        let by = signer.as_deref().unwrap_or("an unnamed signer");
        (
            Status::Good,
            format!("good {name} signature by {by} with key {key_text}"),
        )
    } else {
        match outcome.status {
            VerifierStatus::Good if format == Format::Ssh && signer.is_none() => {
                let file = settings
                    .allowed_signers
                    .as_deref()
                    .map_or_else(String::new, |file| format!(" {}", file.display()));
                (
                    Status::UnknownKey,
                    format!(
                        "the signature matches the tag, but its key {key_text} is not in the \
                         allowed signers file{file}; add the key there only if you trust it"
                    ),
                )
            }
            VerifierStatus::Good => (
                Status::Untrusted,
                format!(
                    "good {name} signature by {}, but the key's trust ({}) is below \
                     gpg.minTrustLevel ({})",
                    signer.as_deref().unwrap_or("an unnamed signer"),
                    trust_name(outcome.trust_level),
                    trust_name(settings.minimum_trust)
                ),
            ),
            VerifierStatus::Error if has_status_line(outcome, b"NO_PUBKEY") => (
                Status::UnknownKey,
                format!(
                    "the signing key {key_text} is not in the keyring; import it with \
                     `gpg --import` only if you trust it"
                ),
            ),
            VerifierStatus::Bad => (
                Status::Bad,
                format!(
                    "the {name} signature does not match the tag: the tag was changed after \
                     signing, or the signature was made for other content ({verifier_output})"
                ),
            ),
            VerifierStatus::Expired => (
                Status::Bad,
                format!("the {name} signature has expired ({verifier_output})"),
            ),
            VerifierStatus::ExpiredKey => (
                Status::Bad,
                format!("the signing key {key_text} has expired ({verifier_output})"),
            ),
            VerifierStatus::RevokedKey => (
                Status::Bad,
                format!("the signing key {key_text} was revoked ({verifier_output})"),
            ),
            VerifierStatus::Error | VerifierStatus::Unknown => (
                Status::Error,
                format!(
                    "{} could not check the signature: {verifier_output}",
                    settings.program.to_string_lossy()
                ),
            ),
        }
    };
    Verdict {
        status,
        format: Some(name),
        signer,
        key,
        detail,
    }
}

/// Returns whether gpg's machine-readable status output has a line `[GNUPG:] NAME ...`.
fn has_status_line(outcome: &Outcome, name: &[u8]) -> bool {
    outcome.raw_output.lines().any(|line| {
        line.strip_prefix(b"[GNUPG:] ")
            .is_some_and(|rest| rest.starts_with(name))
    })
}

fn first_line(output: &BStr) -> String {
    let line = output
        .lines()
        .map(|line| line.to_str_lossy().trim().to_owned())
        .find(|line| !line.is_empty());
    line.unwrap_or_else(|| "no output".to_owned())
}

fn trust_name(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Undefined => "undefined",
        TrustLevel::Never => "never",
        TrustLevel::Marginal => "marginal",
        TrustLevel::Fully => "fully",
        TrustLevel::Ultimate => "ultimate",
    }
}
