//! Where the agent's keys live and how it signs with them.
//!
//! A key NAME is two things: its private half, an OpenSSH private key (unencrypted inside the
//! encrypted vault), as the vault secret `ssh/NAME`; and its public half, `NAME.pub` in the
//! `ssh/` directory next to the vault (public, so `ssh-add -l` works while the vault is locked).
//!
//! Signing parses the private key from the vault for that one signature and drops it (ssh-key
//! zeroizes private key material on drop); nothing of it is written anywhere. Supported:
//! Ed25519, ECDSA (P-256, P-384, P-521) and RSA with SHA-2 (rsa-sha2-256 and rsa-sha2-512;
//! SHA-1 `ssh-rsa` signatures are refused, as OpenSSH does by default). Keys come in through
//! [`import`] and are shown through [`listing`].

pub mod import;
pub mod listing;

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, HashAlg, PrivateKey, PublicKey, Signature};

use crate::Error;

/// The agent protocol's flags for RSA signatures (draft-miller-ssh-agent, 3.6.1).
const RSA_SHA2_256: u32 = 0x02;
const RSA_SHA2_512: u32 = 0x04;

/// The vault secret that holds key `name`.
pub fn secret_name(name: &str) -> String {
    format!("ssh/{name}")
}

/// The directory of public keys for the vault at `vault`.
pub fn public_dir(vault: &Path) -> PathBuf {
    vault.parent().unwrap_or(Path::new(".")).join("ssh")
}

/// One key the agent offers.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub name: String,
    pub public: PublicKey,
}

/// The keys in `dir` (`NAME.pub` files), by name. Unreadable files are skipped.
pub fn list(dir: &Path) -> Vec<StoredKey> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut keys: Vec<StoredKey> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".pub")?
                .to_string();
            let text = std::fs::read_to_string(&path).ok()?;
            let public = PublicKey::from_openssh(text.trim()).ok()?;
            Some(StoredKey { name, public })
        })
        .collect();
    keys.sort_by(|a, b| a.name.cmp(&b.name));
    keys
}

/// Write the public half of key `name` (0644 is fine: it is public).
pub fn write_public(dir: &Path, name: &str, key: &PublicKey) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let line = key
        .to_openssh()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    let path = dir.join(format!("{name}.pub"));
    let tmp = dir.join(format!(".{name}.pub.tmp"));
    std::fs::write(&tmp, format!("{line}\n"))?;
    std::fs::rename(tmp, path)
}

/// Remove the public half of key `name`.
pub fn remove_public(dir: &Path, name: &str) -> std::io::Result<()> {
    std::fs::remove_file(dir.join(format!("{name}.pub")))
}

/// Parse an OpenSSH private key, asking `passphrase` for it when it is encrypted.
pub fn parse_private(
    text: &str,
    passphrase: impl FnOnce() -> Option<zeroize::Zeroizing<String>>,
) -> Result<PrivateKey, Error> {
    if text.contains("BEGIN RSA PRIVATE KEY")
        || text.contains("BEGIN EC PRIVATE KEY")
        || text.contains("BEGIN PRIVATE KEY")
        || text.contains("BEGIN ENCRYPTED PRIVATE KEY")
    {
        return Err(Error::PemKey);
    }
    let key = PrivateKey::from_openssh(text.trim()).map_err(Error::NotOpenSsh)?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let pass = passphrase().ok_or(Error::NoPassphrase)?;
    key.decrypt(pass.as_bytes())
        .map_err(|_| Error::WrongPassphrase)
}

/// A private key made ready for the vault: unencrypted OpenSSH text (the vault encrypts it),
/// and its public half.
pub struct Prepared {
    pub openssh: zeroize::Zeroizing<String>,
    pub public: PublicKey,
}

/// Parse a key file's text (asking `passphrase` if it is encrypted) and prepare it for the vault.
pub fn prepare(
    text: &str,
    passphrase: impl FnOnce() -> Option<zeroize::Zeroizing<String>>,
) -> Result<Prepared, Error> {
    let key = parse_private(text, passphrase)?;
    let openssh = key
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(Error::Encode)?;
    Ok(Prepared {
        openssh,
        public: key.public_key().clone(),
    })
}

/// "ED25519 SHA256:..." for listings.
pub fn describe(public: &PublicKey) -> (String, String) {
    (
        public.algorithm().as_str().to_string(),
        public.fingerprint(HashAlg::Sha256).to_string(),
    )
}

/// Sign `data` with `key` as the agent protocol asks (`flags` choose the RSA hash).
pub fn sign(key: &PrivateKey, data: &[u8], flags: u32) -> Result<Signature, Error> {
    use signature::Signer;
    match key.key_data() {
        ssh_key::private::KeypairData::Rsa(rsa_key) => {
            let hash = if flags & RSA_SHA2_512 != 0 {
                HashAlg::Sha512
            } else if flags & RSA_SHA2_256 != 0 {
                HashAlg::Sha256
            } else {
                return Err(Error::Sha1Refused);
            };
            let private = rsa_private(rsa_key)?;
            let bytes = match hash {
                HashAlg::Sha256 => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(private)
                    .try_sign(data)
                    .map(|s| rsa::signature::SignatureEncoding::to_vec(&s)),
                _ => rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(private)
                    .try_sign(data)
                    .map(|s| rsa::signature::SignatureEncoding::to_vec(&s)),
            }
            .map_err(Error::RsaSigning)?;
            Signature::new(Algorithm::Rsa { hash: Some(hash) }, bytes).map_err(Error::Key)
        }
        _ => key.try_sign(data).map_err(Error::Signing),
    }
}

/// The RSA private key from its OpenSSH parts: n, e, d and both primes.
fn rsa_private(key: &ssh_key::private::RsaKeypair) -> Result<rsa::RsaPrivateKey, Error> {
    let big = |m: &ssh_key::Mpint| rsa::BigUint::try_from(m).map_err(Error::Key);
    rsa::RsaPrivateKey::from_components(
        big(&key.public.n)?,
        big(&key.public.e)?,
        big(&key.private.d)?,
        vec![big(&key.private.p)?, big(&key.private.q)?],
    )
    .map_err(Error::BadRsaKey)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_for_each_algorithm() {
        let mut rng = ssh_key::rand_core::OsRng;
        let data = b"data to sign";
        for alg in [
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP384,
            },
        ] {
            let key = PrivateKey::random(&mut rng, alg.clone()).unwrap();
            let sig = sign(&key, data, 0).unwrap();
            signature::Verifier::verify(key.public_key().key_data(), data, &sig)
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        }
        // An RSA key from ssh-keygen itself (generating one in a debug build takes seconds).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rsa");
        let ok = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
            .arg(&file)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ssh-keygen -t rsa");
        let rsa = parse_private(&std::fs::read_to_string(&file).unwrap(), || None).unwrap();
        for (flags, hash) in [
            (RSA_SHA2_256, HashAlg::Sha256),
            (RSA_SHA2_512, HashAlg::Sha512),
        ] {
            let sig = sign(&rsa, data, flags).unwrap();
            assert_eq!(sig.algorithm(), Algorithm::Rsa { hash: Some(hash) });
            signature::Verifier::verify(rsa.public_key().key_data(), data, &sig).unwrap();
        }
        assert!(sign(&rsa, data, 0)
            .unwrap_err()
            .to_string()
            .contains("SHA-1"));
    }

    #[test]
    fn pem_keys_get_a_conversion_hint() {
        let e = parse_private(
            "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----",
            || None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ssh-keygen -p"), "{e}");
    }
}
