//! The export file: the whole memory as JSON, optionally sealed with a passphrase.
//!
//! ```json
//! { "format": "padlock-memory", "version": 2, "exported": 1764000000000,
//!   "contents": { "profile": {...}, "preferences": [...], "events": [...], "valueHeads": [...] } }
//! ```
//! or, with a passphrase, `"sealed": { "kdf": "PBKDF2-HMAC-SHA256", "iterations": 600000,
//! "salt": b64, "cipher": "AES-256-GCM", "iv": b64, "data": b64 }` in place of `contents`:
//! AES-256-GCM (key from PBKDF2-HMAC-SHA256 of the passphrase) over the contents' JSON, with
//! [`SEALED_AAD`] as associated data. In the browser the sealing is WebCrypto's, natively the
//! RustCrypto crates'; the two read each other's files (tested).
//!
//! Import is all or nothing: the file is parsed, opened and every record validated before
//! the store is touched.
//!
//! Versions: 1 is the first; 2 adds to each preference `merged` (the ids merged into it) and
//! `always` (it steers every answer). Both are optional, so a version 1 file migrates by
//! reading it as it is: nothing merged, every preference steering where it is relevant.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{now_millis, random_bytes, Contents};
use crate::error::{Error, ErrorCode, Result};

pub const FORMAT: &str = "padlock-memory";
/// The export format's version this build writes (independent of the stores' schema version).
pub const VERSION: u32 = 2;
/// The oldest export format version an import reads.
pub const OLDEST_VERSION: u32 = 1;
pub const KDF: &str = "PBKDF2-HMAC-SHA256";
pub const CIPHER: &str = "AES-256-GCM";
/// OWASP's 2023 recommendation for PBKDF2-HMAC-SHA256.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
/// Iteration counts an import accepts: a file asking for more would stall the page (fuzzing
/// found 6.4 million taking 23 s under ASan; 10 million were accepted before).
const ITERATIONS_ACCEPTED: std::ops::RangeInclusive<u32> = 100_000..=2_000_000;
/// The largest export an import reads (checked before parsing).
pub const MAX_IMPORT_BYTES: usize = 256 << 20;
/// Associated data of a sealed export: binds the ciphertext to this format (the same for every
/// version, so that a sealed version 1 file still opens).
pub const SEALED_AAD: &[u8] = b"padlock-memory/1";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ExportFile {
    format: String,
    version: u32,
    exported: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contents: Option<Contents>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<Sealed>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Sealed {
    kdf: String,
    iterations: u32,
    salt: String,
    cipher: String,
    iv: String,
    data: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str, what: &str) -> Result<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| Error::new(ErrorCode::InvalidImport, format!("{what} is not valid base64: {e}")))
}

fn json_error(e: serde_json::Error) -> Error {
    Error::new(ErrorCode::Storage, format!("cannot write the export: {e}"))
}

/// The export file for `contents`; sealed when a passphrase is given.
pub async fn export(contents: &Contents, passphrase: Option<&str>) -> Result<String> {
    let mut file =
        ExportFile { format: FORMAT.into(), version: VERSION, exported: now_millis(), contents: None, sealed: None };
    match passphrase {
        None => file.contents = Some(contents.clone()),
        Some(passphrase) => {
            if passphrase.is_empty() {
                crate::bail!(InvalidArgument, "the passphrase is empty");
            }
            let plain = serde_json::to_vec(contents).map_err(json_error)?;
            let salt = random_bytes::<16>()?;
            let iv = random_bytes::<12>()?;
            let data = passphrase::seal(passphrase, &salt, PBKDF2_ITERATIONS, &iv, SEALED_AAD, &plain).await?;
            file.sealed = Some(Sealed {
                kdf: KDF.into(),
                iterations: PBKDF2_ITERATIONS,
                salt: b64(&salt),
                cipher: CIPHER.into(),
                iv: b64(&iv),
                data: b64(&data),
            });
        }
    }
    serde_json::to_string_pretty(&file).map_err(json_error)
}

/// Reads and checks an export file completely; `contents` only if all of it is valid.
pub async fn import(text: &str, passphrase: Option<&str>) -> Result<Contents> {
    let invalid = |m: String| Error::new(ErrorCode::InvalidImport, m);
    if text.len() > MAX_IMPORT_BYTES {
        return Err(invalid(format!("the file is {} bytes; an export is at most {MAX_IMPORT_BYTES}", text.len())));
    }
    let file: ExportFile =
        serde_json::from_str(text).map_err(|e| invalid(format!("not a padlock memory export: {e}")))?;
    if file.format != FORMAT {
        return Err(invalid(format!("not a padlock memory export (format {:?})", file.format)));
    }
    if !(OLDEST_VERSION..=VERSION).contains(&file.version) {
        return Err(invalid(format!(
            "export format version {} is not one this padlock reads (it reads {OLDEST_VERSION} to {VERSION})",
            file.version
        )));
    }
    let contents = match (file.contents, file.sealed) {
        (Some(_), None) if passphrase.is_some() => {
            crate::bail!(
                InvalidImport,
                "this export is not protected by a passphrase, but one was given: is it the file you meant?"
            );
        }
        (Some(contents), None) => contents,
        (None, Some(sealed)) => {
            let Some(passphrase) = passphrase else {
                crate::bail!(
                    InvalidImport,
                    "this export is protected by a passphrase: give the passphrase to import it"
                );
            };
            if sealed.kdf != KDF || sealed.cipher != CIPHER {
                return Err(invalid(format!("unknown protection {} / {}", sealed.kdf, sealed.cipher)));
            }
            if !ITERATIONS_ACCEPTED.contains(&sealed.iterations) {
                return Err(invalid(format!("{} PBKDF2 iterations is out of the accepted range", sealed.iterations)));
            }
            let salt = unb64(&sealed.salt, "the salt")?;
            let iv = unb64(&sealed.iv, "the IV")?;
            let data = unb64(&sealed.data, "the sealed data")?;
            if !(16..=64).contains(&salt.len()) || iv.len() != 12 {
                return Err(invalid("the salt or IV has the wrong length".into()));
            }
            let plain = passphrase::open(passphrase, &salt, sealed.iterations, &iv, SEALED_AAD, &data).await?;
            serde_json::from_slice(&plain).map_err(|e| invalid(format!("the sealed contents are not valid: {e}")))?
        }
        _ => return Err(invalid("an export holds either contents or sealed contents".into())),
    };
    contents.validate().map_err(|e| match e.code {
        ErrorCode::InvalidArgument => invalid(e.message),
        _ => e,
    })?;
    Ok(contents)
}

#[cfg(target_arch = "wasm32")]
use super::webcrypto::passphrase;

/// PBKDF2-HMAC-SHA256 and AES-256-GCM from the RustCrypto crates (natively).
#[cfg(not(target_arch = "wasm32"))]
mod passphrase {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

    use crate::error::Result;

    fn cipher(passphrase: &str, salt: &[u8], iterations: u32) -> Aes256Gcm {
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(passphrase.as_bytes(), salt, iterations, &mut key);
        Aes256Gcm::new(&key.into())
    }

    pub async fn seal(
        passphrase: &str,
        salt: &[u8],
        iterations: u32,
        iv: &[u8],
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        cipher(passphrase, salt, iterations)
            .encrypt(Nonce::from_slice(iv), Payload { msg: plain, aad })
            .map_err(|_| crate::error::Error::new(crate::ErrorCode::Storage, "AES-GCM encryption failed"))
    }

    pub async fn open(
        passphrase: &str,
        salt: &[u8],
        iterations: u32,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>> {
        cipher(passphrase, salt, iterations).decrypt(Nonce::from_slice(iv), Payload { msg: data, aad }).map_err(|_| {
            crate::error::Error::new(
                crate::ErrorCode::DecryptFailed,
                "the export cannot be opened: wrong passphrase, or the file was altered",
            )
        })
    }
}
