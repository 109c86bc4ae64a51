//! A stand-in for a hardware-key age plugin, for keepout's tests only.
//!
//! Real plugins (age-plugin-yubikey, age-plugin-tpm) need hardware this machine does not have.
//! This one speaks the real age plugin protocol (through the `age-plugin` crate) and behaves like
//! them where it matters to keepout: it asks for a PIN through the age client's callbacks
//! before it unwraps, and refuses a wrong one. Its "key" is a 16-byte pad kept in the identity
//! and the recipient, so it protects nothing: never use it for real data.
//!
//! `age-plugin-keepouttest` alone prints a new identity (with its recipient in a comment). The
//! PIN is `KEEPOUTTEST_PIN` at unwrap time (default 4242).

use std::collections::{HashMap, HashSet};
use std::io;

use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::secrecy::ExposeSecret;
use age_plugin::{identity, recipient, run_state_machine, Callbacks, PluginHandler};

const NAME: &str = "keepouttest";
const PAD: usize = 16;

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrap;
    type IdentityV1 = Unwrap;

    fn recipient_v1(self) -> io::Result<Wrap> {
        Ok(Wrap { pads: Vec::new() })
    }

    fn identity_v1(self) -> io::Result<Unwrap> {
        Ok(Unwrap { pads: Vec::new() })
    }
}

fn pad(bytes: &[u8]) -> Option<[u8; PAD]> {
    bytes.try_into().ok()
}

/// The body of a stanza: the file key XOR the pad, repeated.
fn mix(key: &[u8], pad: &[u8; PAD]) -> Vec<u8> {
    key.iter()
        .zip(pad.iter().cycle())
        .map(|(k, p)| k ^ p)
        .collect()
}

struct Wrap {
    pads: Vec<[u8; PAD]>,
}

impl recipient::RecipientPluginV1 for Wrap {
    fn add_recipient(
        &mut self,
        index: usize,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match (name == NAME).then(|| pad(bytes)).flatten() {
            Some(p) => {
                self.pads.push(p);
                Ok(())
            }
            None => Err(recipient::Error::Recipient {
                index,
                message: "not a keepouttest recipient".into(),
            }),
        }
    }

    fn add_identity(&mut self, index: usize, _: &str, _: &[u8]) -> Result<(), recipient::Error> {
        Err(recipient::Error::Identity {
            index,
            message: "encrypt to the recipient instead".into(),
        })
    }

    fn labels(&mut self) -> HashSet<String> {
        HashSet::new()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        Ok(Ok(file_keys
            .iter()
            .map(|key| {
                self.pads
                    .iter()
                    .map(|p| Stanza {
                        tag: NAME.into(),
                        args: vec![],
                        body: mix(key.expose_secret(), p),
                    })
                    .collect()
            })
            .collect()))
    }
}

struct Unwrap {
    pads: Vec<[u8; PAD]>,
}

impl identity::IdentityPluginV1 for Unwrap {
    fn add_identity(
        &mut self,
        index: usize,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), identity::Error> {
        match (name == NAME).then(|| pad(bytes)).flatten() {
            Some(p) => {
                self.pads.push(p);
                Ok(())
            }
            None => Err(identity::Error::Identity {
                index,
                message: "not a keepouttest identity".into(),
            }),
        }
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        mut callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        let mut keys = HashMap::new();
        for (file, stanzas) in files.into_iter().enumerate() {
            let Some(stanza) = stanzas
                .iter()
                .find(|s| s.tag == NAME && s.body.len() == FILE_KEY_BYTES)
            else {
                continue;
            };
            let _ = callbacks.message("keepouttest: touch your token")?;
            let wanted = std::env::var("KEEPOUTTEST_PIN").unwrap_or_else(|_| "4242".into());
            let pin = callbacks.request_secret("Enter the PIN of your keepouttest token")?;
            let result = match pin {
                Ok(pin) if pin.expose_secret() == wanted => {
                    // The first identity's pad; a wrong one yields a key the header MAC rejects.
                    let p = self.pads[0];
                    Ok(FileKey::init_with_mut(|k| {
                        k.copy_from_slice(&mix(&stanza.body, &p))
                    }))
                }
                _ => Err(vec![identity::Error::Stanza {
                    file_index: file,
                    stanza_index: 0,
                    message: "wrong PIN".into(),
                }]),
            };
            keys.insert(file, result);
        }
        Ok(keys)
    }
}

fn main() -> io::Result<()> {
    let arg = std::env::args().nth(1).unwrap_or_default();
    if let Some(machine) = arg.strip_prefix("--age-plugin=") {
        return run_state_machine(machine, Handler);
    }
    let mut pad = [0u8; PAD];
    getrandom(&mut pad)?;
    age_plugin::print_new_identity(NAME, &pad, &pad);
    Ok(())
}

fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
