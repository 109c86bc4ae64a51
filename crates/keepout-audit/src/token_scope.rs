//! What a token found in plain text can do, read offline from the token itself: a PyPI token's
//! caveats (PyPI tokens are macaroons: `pypi-` and a base64url macaroon whose caveats are
//! readable JSON) say whether it uploads to every project of the account or to named ones, and
//! until when; a GitHub token's prefix says whether it is a classic token (`ghp_`: every scope it
//! was given over every repository the account reaches) or a fine-grained one (`github_pat_`).
//!
//! What this module guarantees:
//! - It reads the token only; it never sends it anywhere and never puts it in a text it returns
//!   (the texts name the scope, never the value).
//! - A PyPI token it cannot read (not base64, a cut macaroon, a caveat that is not JSON) is
//!   reported as "could not read its scope", never as a guessed scope, and never panics.
//! - Caveats are read, not verified: without PyPI's key nobody can check the signature, but
//!   caveats can only narrow a token, so the scope read is at most what the token can do.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::Value;

/// What a token can do, as the finding about it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenScope {
    /// The token's kind with its scope: "PyPI token scoped to project widget".
    pub label: String,
    /// Why the scope matters, in a sentence or two.
    pub why: String,
    /// What to do beyond moving the token, where its scope calls for it.
    pub advice: Option<&'static str>,
}

impl TokenScope {
    /// `why` and `fix` with this scope's sentence and advice.
    pub fn amend(&self, why: &str, fix: &str) -> (String, String) {
        let why = if self.why.is_empty() {
            why.to_string()
        } else {
            format!("{} {why}", self.why)
        };
        let fix = match self.advice {
            Some(advice) => format!("{fix} {advice}"),
            None => fix.to_string(),
        };
        (why, fix)
    }
}

/// The kind of [`keepout_credentials::tokens`] a PyPI token has.
const PYPI_KIND: &str = "PyPI token";

/// What the token of this kind can do; just the kind where nothing more can be read.
pub(crate) fn describe(kind: &'static str, secret: &str) -> TokenScope {
    let plain = |label: &str, why: &str, advice| TokenScope {
        label: label.to_string(),
        why: why.to_string(),
        advice,
    };
    if kind == PYPI_KIND {
        return match read_pypi_token(secret) {
            Ok(token) => token.scope_of(now()),
            Err(_) => plain(
                "PyPI token (could not read its scope)",
                "Its caveats could not be read, so it may upload to every project of the account.",
                None,
            ),
        };
    }
    if secret.starts_with("ghp_") {
        return plain(
            &format!("{kind} (classic, ghp_)"),
            "A classic token carries every scope it was given (repo, workflow, ...) over every repository the account can reach, and never expires unless an expiry was set when it was made.",
            Some("Replace it with a fine-grained token (github_pat_) limited to the repositories and permissions it needs, with an expiry."),
        );
    }
    if secret.starts_with("gho_") {
        return plain(
            &format!("{kind} (OAuth, gho_)"),
            "An OAuth app's token (the GitHub CLI's, for one) has every scope the app asked for (gh asks for repo, workflow, read:org, gist) over every repository the account can reach, until it is revoked.",
            None,
        );
    }
    if secret.starts_with("github_pat_") {
        return plain(
            kind,
            "A fine-grained token is limited to the repositories and permissions chosen when it was made, and expires; which ones, only GitHub's settings tell.",
            None,
        );
    }
    plain(kind, "", None)
}

/// The scopes of the PyPI and GitHub tokens in `text` (a credentials file's), in order, each once.
pub(crate) fn scopes_in(text: &str) -> Vec<TokenScope> {
    let mut scopes: Vec<TokenScope> = Vec::new();
    for token in keepout_credentials::tokens::find_secrets(text) {
        let scope = describe(token.kind, token.secret);
        if !scope.why.is_empty() && !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

/// Which projects a PyPI token uploads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PypiScope {
    /// No caveat names projects: every project the account maintains, today's and future ones.
    WholeAccount,
    /// Only these projects (normalized names).
    Projects(Vec<String>),
    /// Only projects named by PyPI's internal ids (so many of them).
    ProjectIds(usize),
    /// A short-lived token minted by trusted publishing for one publisher's projects.
    TrustedPublisher,
}

/// What a PyPI token's caveats say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiToken {
    pub scope: PypiScope,
    /// Unix seconds after which PyPI refuses it, if a caveat says.
    pub expires_at: Option<i64>,
}

/// Why a PyPI token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenScopeError {
    #[error("not a PyPI token (no pypi- prefix)")]
    NotPypi,
    #[error("the token is not base64url")]
    NotBase64,
    #[error("the macaroon ends before its caveats do")]
    Truncated,
    #[error("not a macaroon in a format PyPI uses")]
    UnknownFormat,
    #[error("a caveat is not JSON")]
    CaveatNotJson,
}

/// The scope and expiry a PyPI token's caveats give it.
pub fn read_pypi_token(token: &str) -> Result<PypiToken, TokenScopeError> {
    let body = token
        .strip_prefix("pypi-")
        .ok_or(TokenScopeError::NotPypi)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body.trim_end_matches('='))
        .map_err(|_| TokenScopeError::NotBase64)?;
    let caveats = match bytes.first() {
        Some(2) => caveats_v2(&bytes)?,
        Some(_) => caveats_v1(&bytes)?,
        None => return Err(TokenScopeError::Truncated),
    };
    let mut restriction = Restriction::default();
    for caveat in caveats {
        let caveat: Value =
            serde_json::from_slice(caveat).map_err(|_| TokenScopeError::CaveatNotJson)?;
        restriction.add(&caveat);
    }
    Ok(restriction.into_token())
}

/// The caveats' identifiers of a macaroon in libmacaroons' binary format v2 (what PyPI issues:
/// `AgEIcHlwaS5vcmc` is version 2, then the location `pypi.org`): fields of a varint type, a
/// varint length and the bytes; the header's fields, an end, each caveat's fields and an end,
/// an end of the caveats, then the signature.
fn caveats_v2(bytes: &[u8]) -> Result<Vec<&[u8]>, TokenScopeError> {
    const END: u64 = 0;
    const IDENTIFIER: u64 = 2;
    let mut reader = Reader { bytes, at: 1 };
    // The header: location, identifier.
    loop {
        let field = reader.varint()?;
        if field == END {
            break;
        }
        let length = reader.length()?;
        reader.take(length)?;
    }
    let mut caveats = Vec::new();
    loop {
        let mut field = reader.varint()?;
        if field == END {
            return Ok(caveats);
        }
        let mut identifier = None;
        while field != END {
            let length = reader.length()?;
            let data = reader.take(length)?;
            if field == IDENTIFIER {
                identifier = Some(data);
            }
            field = reader.varint()?;
        }
        caveats.push(identifier.ok_or(TokenScopeError::UnknownFormat)?);
    }
}

/// The caveats' identifiers (`cid`) of a macaroon in pymacaroons' format v1: packets of a
/// 4-hex-digit length (of the whole packet), a key, a space, the value and a newline.
fn caveats_v1(bytes: &[u8]) -> Result<Vec<&[u8]>, TokenScopeError> {
    let mut caveats = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let header = rest.get(..4).ok_or(TokenScopeError::Truncated)?;
        let length = std::str::from_utf8(header)
            .ok()
            .and_then(|hex| usize::from_str_radix(hex, 16).ok())
            .filter(|&length| length > 5)
            .ok_or(TokenScopeError::UnknownFormat)?;
        let packet = rest.get(4..length).ok_or(TokenScopeError::Truncated)?;
        let packet = packet
            .strip_suffix(b"\n")
            .ok_or(TokenScopeError::UnknownFormat)?;
        let space = packet
            .iter()
            .position(|&b| b == b' ')
            .ok_or(TokenScopeError::UnknownFormat)?;
        if &packet[..space] == b"cid" {
            caveats.push(&packet[space + 1..]);
        }
        rest = &rest[length..];
    }
    Ok(caveats)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// An unsigned LEB128 varint.
    fn varint(&mut self) -> Result<u64, TokenScopeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at).ok_or(TokenScopeError::Truncated)?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(TokenScopeError::UnknownFormat)
    }

    fn length(&mut self) -> Result<usize, TokenScopeError> {
        usize::try_from(self.varint()?).map_err(|_| TokenScopeError::Truncated)
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], TokenScopeError> {
        let end = self
            .at
            .checked_add(length)
            .ok_or(TokenScopeError::Truncated)?;
        let data = self
            .bytes
            .get(self.at..end)
            .ok_or(TokenScopeError::Truncated)?;
        self.at = end;
        Ok(data)
    }
}

/// What the caveats read so far allow: every caveat must hold, so each one narrows.
#[derive(Default)]
struct Restriction {
    projects: Option<Vec<String>>,
    project_ids: Option<usize>,
    trusted_publisher: bool,
    expires_at: Option<i64>,
}

impl Restriction {
    /// One caveat, in PyPI's current form (`[tag, fields...]`: 0 expiration, 1 project names,
    /// 2 project ids, 3 user, 4 trusted publisher, 5 permissions) or its legacy JSON objects
    /// (`{"version": 1, "permissions": "user" | {"projects": [...]}}`, `{"exp", "nbf"}`,
    /// `{"project_ids": [...]}`). Unknown caveats narrow in ways not read here; they are skipped.
    fn add(&mut self, caveat: &Value) {
        let names = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .map(|names| {
                    names
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        match caveat {
            Value::Array(fields) => match fields.first().and_then(Value::as_u64) {
                Some(0) => self.expire(fields.get(1)),
                Some(1) => self.only_projects(names(fields.get(1).unwrap_or(&Value::Null))),
                Some(2) => self.only_project_ids(fields.get(1)),
                Some(4) => self.trusted_publisher = true,
                _ => {}
            },
            Value::Object(fields) => {
                if let Some(projects) = fields
                    .get("permissions")
                    .and_then(|permissions| permissions.get("projects"))
                {
                    self.only_projects(names(projects));
                }
                if fields.contains_key("exp") {
                    self.expire(fields.get("exp"));
                }
                if fields.contains_key("project_ids") {
                    self.only_project_ids(fields.get("project_ids"));
                }
            }
            _ => {}
        }
    }

    fn expire(&mut self, at: Option<&Value>) {
        if let Some(at) = at.and_then(Value::as_i64) {
            self.expires_at = Some(self.expires_at.map_or(at, |before| before.min(at)));
        }
    }

    fn only_projects(&mut self, names: Vec<String>) {
        self.projects = Some(match self.projects.take() {
            Some(before) => before
                .into_iter()
                .filter(|name| names.contains(name))
                .collect(),
            None => names,
        });
    }

    fn only_project_ids(&mut self, ids: Option<&Value>) {
        let count = ids.and_then(Value::as_array).map_or(0, Vec::len);
        self.project_ids = Some(self.project_ids.map_or(count, |before| before.min(count)));
    }

    fn into_token(self) -> PypiToken {
        let scope = if self.trusted_publisher {
            PypiScope::TrustedPublisher
        } else if let Some(projects) = self.projects {
            PypiScope::Projects(projects)
        } else if let Some(count) = self.project_ids {
            PypiScope::ProjectIds(count)
        } else {
            PypiScope::WholeAccount
        };
        PypiToken {
            scope,
            expires_at: self.expires_at,
        }
    }
}

impl PypiToken {
    /// The finding's words for this token, `now` in Unix seconds.
    fn scope_of(&self, now: i64) -> TokenScope {
        let (scoped, why, advice) = match &self.scope {
            PypiScope::WholeAccount => (
                "scoped to the whole account (every project you maintain)".to_string(),
                "Its caveats (readable in the token) name no project: whoever reads it can upload a release of every project you maintain, and of those you create later.".to_string(),
                Some("Better: publish with trusted publishing from CI (no token on this machine at all); a token that must stay should be scoped to the one project it uploads."),
            ),
            PypiScope::Projects(names) if names.is_empty() => (
                "scoped to no project (its caveats exclude each other)".to_string(),
                "Its caveats name projects that no project matches all of: PyPI refuses it for every upload.".to_string(),
                None,
            ),
            PypiScope::Projects(names) => {
                let (word, list) = if names.len() == 1 { ("project", names[0].clone()) } else { ("projects", names.join(", ")) };
                (
                    format!("scoped to {word} {list}"),
                    format!("Its caveats limit it to {word} {list}: whoever reads it can upload a release of that, not of your other projects."),
                    Some("Trusted publishing from CI would need no token on this machine at all."),
                )
            }
            PypiScope::ProjectIds(count) => (
                format!("scoped to {count} project(s) by id"),
                "Its caveats limit it to projects named by PyPI's ids: whoever reads it can upload a release of those.".to_string(),
                Some("Trusted publishing from CI would need no token on this machine at all."),
            ),
            PypiScope::TrustedPublisher => (
                "minted by trusted publishing".to_string(),
                "A short-lived token for one trusted publisher's projects, which should never be saved on disk.".to_string(),
                None,
            ),
        };
        let expiry = match self.expires_at {
            Some(at) if at <= now => format!(", expired {}", utc_date(at)),
            Some(at) => format!(", expiring {}", utc_date(at)),
            None if self.scope == PypiScope::TrustedPublisher => String::new(),
            None => ", with no expiry".to_string(),
        };
        TokenScope {
            label: format!("{PYPI_KIND} {scoped}{expiry}"),
            why,
            advice,
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
        })
}

/// `YYYY-MM-DD` (UTC) of Unix seconds: the proleptic Gregorian civil date of the day number.
fn utc_date(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests;
