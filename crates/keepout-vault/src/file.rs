//! The vault on disk: one standard age file (scrypt passphrase recipient by default; X25519 or
//! age plugin recipients when configured), written atomically.
//!
//! Guarantees:
//! * the file is a plain age file: `age -d vault.age` (or rage) decrypts it with the passphrase;
//! * every change is read-modify-write under an exclusive lock (`vault.age.lock`), so concurrent
//!   writers never lose each other's changes (`update_from` starts from a document read
//!   earlier only when the file is still the [`Version`] it was read from, checked under the
//!   lock; that saves a scrypt run, never a concurrent write);
//! * a write goes to a temporary file in the same directory, is fsynced, the current vault is
//!   hard-linked to `vault.age.bak` (replacing the previous backup atomically), the temporary file
//!   is renamed over the vault, and the directory is fsynced. At every instant `vault.age` is
//!   either the complete old vault or the complete new one; a `kill -9` anywhere loses nothing,
//!   and what it leaves beside the vault (the unrenamed new content, the backup's staged link)
//!   is removed by the next write;
//! * nothing is written when reading fails (wrong passphrase, corruption, newer format);
//! * a missing vault whose backup is there is reported ([`VaultError::OnlyBackup`]), never
//!   overwritten: [`VaultFile::create`] refuses to make a new vault while `vault.age.bak` exists;
//! * a passphrase vault is decrypted up to scrypt work factor [`MAX_WORK_FACTOR`], fixed here,
//!   never up to a limit guessed from how fast this machine seems at the moment (age's default,
//!   which under load called healthy vaults damaged); a file above it gets a clear error before
//!   any scrypt work.

use std::io::Write;
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::document::Document;
use crate::error::VaultError;

/// The largest scrypt work factor (log2 N) keepout writes or reads: 2^22 takes a few seconds and
/// 4 GiB of memory. age's own calibration (about a second) stays well below it.
pub const MAX_WORK_FACTOR: u8 = 22;

/// The scrypt identity for a passphrase, its limit [`MAX_WORK_FACTOR`] (never age's speed
/// measurement).
fn scrypt_identity(p: &SecretString) -> age::scrypt::Identity {
    let mut id = age::scrypt::Identity::new(p.clone());
    id.set_max_work_factor(MAX_WORK_FACTOR);
    id
}

/// The work factor of the file's scrypt stanza (`-> scrypt SALT LOG_N` in the age header), if
/// it has one.
pub fn scrypt_work_factor(bytes: &[u8]) -> Option<u8> {
    let header_end = bytes
        .windows(4)
        .position(|w| w == b"\n---")
        .unwrap_or(bytes.len().min(4096));
    let header = std::str::from_utf8(&bytes[..header_end]).ok()?;
    header.lines().find_map(|line| {
        let mut words = line.strip_prefix("-> scrypt ")?.split(' ');
        let _salt = words.next()?;
        words.next()?.parse().ok()
    })
}

/// What opens the vault: a passphrase (age's scrypt recipient, the default), or age identities
/// with the recipients to encrypt to: X25519 keys in identity files (as `age-keygen` writes
/// them), or age plugin identities and recipients (`AGE-PLUGIN-YUBIKEY-...`, `age1yubikey1...`)
/// served by the plugin's binary on PATH.
#[derive(Clone)]
pub enum Key {
    Passphrase(SecretString),
    Identities {
        recipients: Vec<String>,
        identity_files: Vec<PathBuf>,
    },
}

impl From<SecretString> for Key {
    fn from(p: SecretString) -> Key {
        Key::Passphrase(p)
    }
}

impl Key {
    fn recipients(
        &self,
        work_factor: Option<u8>,
    ) -> Result<Vec<Box<dyn age::Recipient + Send>>, VaultError> {
        match self {
            Key::Passphrase(p) => {
                let mut r = age::scrypt::Recipient::new(p.clone());
                if let Some(n) = work_factor {
                    r.set_work_factor(n);
                }
                Ok(vec![Box::new(r)])
            }
            Key::Identities { recipients, .. } => {
                if recipients.is_empty() {
                    return Err(VaultError::Config("[vault] recipients is empty".into()));
                }
                let mut out: Vec<Box<dyn age::Recipient + Send>> = Vec::new();
                let mut plugin_recipients: Vec<age::plugin::Recipient> = Vec::new();
                for r in recipients {
                    if let Ok(x) = r.parse::<age::x25519::Recipient>() {
                        out.push(Box::new(x));
                    } else if let Ok(p) = r.parse::<age::plugin::Recipient>() {
                        plugin_recipients.push(p);
                    } else {
                        return Err(VaultError::Config(format!(
                            "recipient {r:?} is neither an X25519 recipient (age1...) nor an age plugin recipient (age1NAME1...)"
                        )));
                    }
                }
                // One plugin process per plugin, holding all of that plugin's recipients.
                let mut names: Vec<&str> = plugin_recipients.iter().map(|p| p.plugin()).collect();
                names.sort_unstable();
                names.dedup();
                for name in names {
                    let plugin = age::plugin::RecipientPluginV1::new(
                        name,
                        &plugin_recipients,
                        &[],
                        PluginPrompts,
                    )
                    .map_err(|e| VaultError::Config(plugin_error(&e)))?;
                    out.push(Box::new(plugin));
                }
                Ok(out)
            }
        }
    }

    fn identities(&self) -> Result<Vec<Box<dyn age::Identity>>, VaultError> {
        match self {
            Key::Passphrase(p) => Ok(vec![Box::new(scrypt_identity(p))]),
            Key::Identities { identity_files, .. } => {
                let mut all: Vec<Box<dyn age::Identity>> = Vec::new();
                for f in identity_files {
                    let file = age::IdentityFile::from_file(f.display().to_string())
                        .map_err(|e| VaultError::io("cannot read the identity file", f, e))?
                        .with_callbacks(PluginPrompts);
                    let ids = file.into_identities().map_err(|e| {
                        VaultError::Config(format!("{}: {}", f.display(), decrypt_error(&e)))
                    })?;
                    all.extend(ids.into_iter().map(|i| i as Box<dyn age::Identity>));
                }
                Ok(all)
            }
        }
    }
}

/// What an age plugin (age-plugin-yubikey, age-plugin-tpm, ...) may ask of the user — a PIN, a
/// touch, "insert the key" — goes through keepout's one prompt mechanism (KEEPOUT_ASKPASS,
/// pinentry, the terminal, SSH_ASKPASS), so it works the same from a script, a desktop or the
/// unlock cache.
#[derive(Clone, Copy)]
struct PluginPrompts;

impl age::Callbacks for PluginPrompts {
    fn display_message(&self, message: &str) {
        eprintln!("keepout: {message}");
    }

    fn confirm(&self, message: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let no = no.unwrap_or("no");
        keepout_prompt::confirm(&format!("{message} ({yes} / {no})")).ok()
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        keepout_prompt::secret(description)
            .ok()
            .map(|s| s.to_string())
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        keepout_prompt::secret(description)
            .ok()
            .map(|s| SecretString::from(s.to_string()))
    }
}

fn plugin_error(e: &age::plugin::ResolveError) -> String {
    match e {
        age::plugin::ResolveError::MissingPlugin { binary_name } => format!(
            "the vault needs the age plugin `{binary_name}`, which is not on PATH; install it (e.g. `cargo install {binary_name}`)"
        ),
        other => other.to_string(),
    }
}

fn decrypt_error(e: &age::DecryptError) -> String {
    match e {
        age::DecryptError::PluginResolve(e) => plugin_error(e),
        other => other.to_string(),
    }
}

/// One version of the vault file: every write renames a new file over it (a new inode), so a
/// write always changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    dev: u64,
    inode: u64,
    mtime_ns: i128,
    size: u64,
}

/// The vault file and how to write it.
#[derive(Debug, Clone)]
pub struct VaultFile {
    path: PathBuf,
    /// scrypt's log2(N); `None`: age's default, calibrated to about a second on this machine.
    work_factor: Option<u8>,
}

impl VaultFile {
    /// The vault at `path`.
    pub fn at(path: impl Into<PathBuf>) -> VaultFile {
        VaultFile {
            path: path.into(),
            work_factor: None,
        }
    }

    /// `$KEEPOUT_VAULT`, else `$XDG_DATA_HOME/keepout/vault.age`, else
    /// `~/.local/share/keepout/vault.age`.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("KEEPOUT_VAULT") {
            return p.into();
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
                    .join(".local/share")
            });
        data.join("keepout/vault.age")
    }

    /// The vault at [`VaultFile::default_path`]. `KEEPOUT_SCRYPT_WORK_FACTOR` (log2 N, at most
    /// [`MAX_WORK_FACTOR`]) overrides age's calibrated scrypt cost for new writes; the tests use
    /// it to stay fast.
    pub fn usual() -> VaultFile {
        let vault = VaultFile::at(VaultFile::default_path());
        match std::env::var("KEEPOUT_SCRYPT_WORK_FACTOR")
            .ok()
            .and_then(|s| s.parse::<u8>().ok())
        {
            // At most keepout's maximum, which it reads back (`with_work_factor` lowers a larger one).
            Some(n) => vault.with_work_factor(n),
            None => vault,
        }
    }

    /// Use scrypt work factor `log_n` for new writes (tests use a small one; the default is age's
    /// own calibration).
    /// (At most [`MAX_WORK_FACTOR`]: a larger one is lowered to it, so that keepout can read
    /// what it wrote.)
    pub fn with_work_factor(mut self, log_n: u8) -> VaultFile {
        self.work_factor = Some(log_n.clamp(1, MAX_WORK_FACTOR));
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn exists(&self) -> bool {
        self.path.exists()
    }

    /// The vault's file name (`vault.age`), which its siblings are named after.
    fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        self.path
            .with_file_name(format!("{}{suffix}", self.file_name()))
    }

    /// Where the previous version is kept.
    pub fn backup_path(&self) -> PathBuf {
        self.sibling(".bak")
    }

    /// The error for a vault that is not there: [`VaultError::OnlyBackup`] when its backup is
    /// (a state to recover from), else [`VaultError::NoVault`].
    pub fn missing(&self) -> VaultError {
        let backup = self.backup_path();
        if backup.exists() {
            VaultError::OnlyBackup {
                vault: self.path.clone(),
                backup,
            }
        } else {
            VaultError::NoVault(self.path.clone())
        }
    }

    /// What the backup is next to a damaged vault: how much older, and what it lacks.
    fn backup_note(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let backup = self.backup_path();
        let (Ok(b), Ok(v)) = (std::fs::metadata(&backup), std::fs::metadata(&self.path)) else {
            return format!(" (there is no backup {})", backup.display());
        };
        let older = v.mtime() - b.mtime();
        let age = match older {
            ..=0 => "written at the same time or later".to_string(),
            1..=119 => format!("{older} seconds older"),
            120..=7199 => format!("{} minutes older", older / 60),
            _ => format!("{} hours older", older / 3600),
        };
        format!(
            " (its backup {} is the version before the last write, {age}: it lacks that write)",
            backup.display()
        )
    }

    /// Decrypt and parse the vault.
    pub fn read(&self, key: &Key) -> Result<Document, VaultError> {
        self.read_inner(key).map_err(|e| match e {
            VaultError::Corrupted(m) => VaultError::Corrupted(format!("{m}{}", self.backup_note())),
            e => e,
        })
    }

    fn read_inner(&self, key: &Key) -> Result<Document, VaultError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.missing()),
            Err(e) => return Err(VaultError::io("cannot read", &self.path, e)),
        };
        if let (Key::Passphrase(_), Some(log_n)) = (key, scrypt_work_factor(&bytes)) {
            if log_n > MAX_WORK_FACTOR {
                return Err(VaultError::Corrupted(format!(
                    "{}: its scrypt work factor is 2^{log_n}, above the 2^{MAX_WORK_FACTOR} keepout \
                     writes and reads (it would take minutes and gigabytes); it was not written by \
                     keepout, or its header is damaged",
                    self.path.display()
                )));
            }
        }
        let identities = key.identities()?;
        let plain =
            Zeroizing::new(
                self.decrypt(&identities, &bytes)
                    .map_err(|e| match (e, key) {
                        (VaultError::WrongPassphrase(p), Key::Identities { .. }) => {
                            VaultError::WrongIdentity(p)
                        }
                        (e, _) => e,
                    })?,
            );
        let text = std::str::from_utf8(&plain).map_err(|_| {
            VaultError::Corrupted(format!(
                "{}: the decrypted vault is not text",
                self.path.display()
            ))
        })?;
        Document::from_toml(text)
    }

    fn decrypt(
        &self,
        identities: &[Box<dyn age::Identity>],
        bytes: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        use std::io::Read;
        let decryptor = age::Decryptor::new(bytes).map_err(|e| self.decrypt_error(e))?;
        let mut reader = decryptor
            .decrypt(identities.iter().map(|i| i.as_ref()))
            .map_err(|e| self.decrypt_error(e))?;
        let mut plain = Vec::new();
        reader
            .read_to_end(&mut plain)
            .map_err(|e| self.decrypt_error(age::DecryptError::Io(e)))?;
        Ok(plain)
    }

    fn decrypt_error(&self, e: age::DecryptError) -> VaultError {
        use age::DecryptError as D;
        let where_ = self.path.display();
        match e {
            // The scrypt stanza did not open: the passphrase is wrong (a damaged stanza looks the
            // same; the message says so).
            D::DecryptionFailed | D::NoMatchingKeys | D::KeyDecryptionFailed => {
                VaultError::WrongPassphrase(self.path.clone())
            }
            D::InvalidHeader | D::UnknownFormat => VaultError::Corrupted(format!(
                "{where_} is not an age file, or its header is damaged"
            )),
            D::InvalidMac => {
                VaultError::Corrupted(format!("{where_}: the header was changed (MAC mismatch)"))
            }
            D::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                VaultError::Corrupted(format!("{where_} is truncated"))
            }
            D::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => VaultError::Corrupted(
                format!("{where_}: the contents are damaged, truncated or were tampered with"),
            ),
            D::Plugin(errors) => VaultError::Plugin {
                path: self.path.clone(),
                message: errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            D::PluginResolve(e) => VaultError::Config(plugin_error(&e)),
            // Not reached for keepout's limit (checked before); scrypt itself refused.
            D::ExcessiveWork { required, .. } => VaultError::Corrupted(format!(
                "{where_}: scrypt refused its work factor 2^{required} (keepout reads up to 2^{MAX_WORK_FACTOR})"
            )),
            other => VaultError::Corrupted(format!("{where_}: {other}")),
        }
    }

    /// Create a new vault; refuses to overwrite one, and refuses while its backup is there
    /// ([`VaultError::OnlyBackup`]: the new vault's first write would replace that backup).
    /// Returns the [`Version`] it wrote.
    pub fn create(&self, key: &Key) -> Result<Version, VaultError> {
        let _lock = self.lock()?;
        if self.exists() {
            return Err(VaultError::io(
                "will not overwrite",
                &self.path,
                std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            ));
        }
        if self.backup_path().exists() {
            return Err(self.missing());
        }
        self.write_locked(&Document::new(), key)?;
        self.version().ok_or_else(|| {
            VaultError::io("cannot stat", &self.path, std::io::Error::last_os_error())
        })
    }

    /// Which version of the file is there now, if there is one.
    pub fn version(&self) -> Option<Version> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.path).ok().map(|m| Version {
            dev: m.dev(),
            inode: m.ino(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            size: m.size(),
        })
    }

    /// The vault and the [`Version`] it was read from, for [`VaultFile::update_from`].
    pub fn read_versioned(&self, key: &Key) -> Result<(Document, Version), VaultError> {
        // The version is taken before the read: a write in between makes it stale, so that
        // `update_from` reads again rather than trusting a document it cannot date.
        let version = self.version().ok_or_else(|| self.missing())?;
        Ok((self.read(key)?, version))
    }

    /// Read, change and write the vault under the lock. Nothing is written if `change` fails.
    pub fn update<T>(
        &self,
        key: &Key,
        change: impl FnOnce(&mut Document) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        self.update_from(key, None, change)
    }

    /// [`VaultFile::update`], starting from a document read earlier when the file is still the
    /// version it was read from (checked under the lock): one decryption, one scrypt run, fewer.
    /// When it is not, the vault is read again, so no concurrent change is lost.
    pub fn update_from<T>(
        &self,
        key: &Key,
        earlier: Option<(Document, Version)>,
        change: impl FnOnce(&mut Document) -> Result<T, VaultError>,
    ) -> Result<T, VaultError> {
        let _lock = self.lock()?;
        let mut doc = match earlier {
            Some((doc, version)) if self.version() == Some(version) => doc,
            _ => self.read(key)?,
        };
        let out = change(&mut doc)?;
        self.write_locked(&doc, key)?;
        Ok(out)
    }

    fn lock(&self) -> Result<std::fs::File, VaultError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        create_private_dir(dir)?;
        let lock_path = self.sibling(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| VaultError::io("cannot open the lock", &lock_path, e))?;
        f.lock()
            .map_err(|e| VaultError::io("cannot lock", &lock_path, e))?;
        Ok(f)
    }

    fn encrypt(&self, doc: &Document, key: &Key) -> Result<Vec<u8>, VaultError> {
        let recipients = key.recipients(self.work_factor)?;
        let encrypt = |e: &dyn std::fmt::Display| VaultError::Encrypt(e.to_string());
        let encryptor = age::Encryptor::with_recipients(
            recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
        )
        .map_err(|e| encrypt(&e))?;
        let mut out = Vec::new();
        let mut writer = encryptor.wrap_output(&mut out).map_err(|e| encrypt(&e))?;
        writer
            .write_all(doc.to_toml().as_bytes())
            .map_err(|e| encrypt(&e))?;
        writer.finish().map_err(|e| encrypt(&e))?;
        Ok(out)
    }

    /// The name a write's new content starts with, beside the vault (`.vault.age.new-XXXXXX`):
    /// named after this vault, so a sweep never touches another vault's write in the same
    /// directory.
    fn new_content_prefix(&self) -> String {
        format!(".{}.new-", self.file_name())
    }

    /// What writes killed outright (kill -9, a crash, a full disk) left beside the vault: their
    /// new content, never renamed into place, and the backup's staged link. Called under the
    /// vault's lock, so no write of this vault is under way; the old shared prefix
    /// (`.vault-new-`, before writes were named after their vault) only when over an hour old,
    /// as it may be another vault's write in progress.
    fn sweep_interrupted_writes(&self, dir: &Path) {
        let _ = std::fs::remove_file(self.sibling(".bak.new"));
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let prefix = self.new_content_prefix();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale_old_style = name.starts_with(".vault-new-")
                && entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > std::time::Duration::from_secs(3600));
            if name.starts_with(&prefix) || stale_old_style {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn write_locked(&self, doc: &Document, key: &Key) -> Result<(), VaultError> {
        let bytes = self.encrypt(doc, key)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let io = |what| move |e| VaultError::io(what, dir, e);
        self.sweep_interrupted_writes(dir);
        let prefix = self.new_content_prefix();
        let mut tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(dir)
            .map_err(io("cannot create a temporary file in"))?;
        // Written through the file itself: tempfile's own writer names the temporary file in
        // its errors, a file that is gone by the time the user reads them.
        let write_failed = |source| VaultError::WriteFailed {
            dir: dir.to_path_buf(),
            source,
        };
        tmp.as_file_mut().write_all(&bytes).map_err(write_failed)?;
        tmp.as_file().sync_all().map_err(write_failed)?;
        if self.exists() {
            // The backup is replaced atomically too: link the current vault under a temporary
            // name, then rename that over the old backup.
            let staged = self.sibling(".bak.new");
            std::fs::hard_link(&self.path, &staged)
                .or_else(|_| std::fs::copy(&self.path, &staged).map(|_| ()))
                .map_err(|e| VaultError::io("cannot keep a backup at", &staged, e))?;
            std::fs::rename(&staged, self.backup_path())
                .map_err(|e| VaultError::io("cannot keep a backup at", &self.backup_path(), e))?;
            // When the backup already is the vault (a write killed after its backup step),
            // both names are links to one file and rename(2) does nothing: the staged name
            // stays, and is removed here.
            let _ = std::fs::remove_file(&staged);
        }
        tmp.persist(&self.path)
            .map_err(|e| VaultError::io("cannot replace", &self.path, e.error))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync the directory"))?;
        Ok(())
    }
}

fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| VaultError::io("cannot create", dir, e))
}
