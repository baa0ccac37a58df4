//! WebCrypto (SubtleCrypto) for the browser: the record key of the IndexedDB store and
//! passphrase-sealed exports. Works in windows and workers alike (`globalThis.crypto`).

use js_sys::{Array, Object, Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesGcmParams, AesKeyGenParams, CryptoKey, Pbkdf2Params, SubtleCrypto};

use crate::error::{Error, ErrorCode, Result};

/// The `name` of a JS exception (a DOMException's, e.g. "QuotaExceededError"), if it has one.
pub(crate) fn exception_name(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &"name".into()).ok().and_then(|n| n.as_string()).unwrap_or_default()
}

/// A JS exception as a readable message.
pub(crate) fn describe(e: &JsValue) -> String {
    let message = js_sys::Reflect::get(e, &"message".into()).ok().and_then(|m| m.as_string());
    match (exception_name(e), message) {
        (name, Some(m)) if !name.is_empty() => format!("{name}: {m}"),
        (_, Some(m)) => m,
        _ => format!("{e:?}"),
    }
}

fn crypto_error(what: &str, e: JsValue) -> Error {
    Error::new(ErrorCode::Storage, format!("WebCrypto {what} failed: {}", describe(&e)))
}

fn subtle() -> Result<SubtleCrypto> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())
        .ok()
        .and_then(|c| c.dyn_into::<web_sys::Crypto>().ok())
        .ok_or_else(|| {
            Error::new(ErrorCode::Storage, "WebCrypto is not available here (a secure context is needed)")
        })?;
    Ok(crypto.subtle())
}

async fn settle(what: &str, promise: std::result::Result<Promise, JsValue>) -> Result<JsValue> {
    let promise = promise.map_err(|e| crypto_error(what, e))?;
    JsFuture::from(promise).await.map_err(|e| crypto_error(what, e))
}

fn usages(list: &[&str]) -> JsValue {
    list.iter().map(|u| JsValue::from_str(u)).collect::<Array>().into()
}

fn gcm(iv: &[u8], aad: Option<&[u8]>) -> AesGcmParams {
    let params = AesGcmParams::new_with_u8_array("AES-GCM", &Uint8Array::from(iv));
    if let Some(aad) = aad {
        params.set_additional_data_u8_array(&Uint8Array::from(aad));
    }
    params
}

/// A fresh AES-256-GCM key that can encrypt and decrypt but never be read out
/// (`extractable: false`): it can be stored in IndexedDB and used, not exported.
pub async fn generate_record_key() -> Result<CryptoKey> {
    let params = AesKeyGenParams::new("AES-GCM", 256);
    let key =
        settle("generateKey", subtle()?.generate_key_with_object(&params, false, &usages(&["encrypt", "decrypt"])))
            .await?;
    key.dyn_into::<CryptoKey>().map_err(|_| Error::new(ErrorCode::Storage, "generateKey did not give a CryptoKey"))
}

pub async fn encrypt(key: &CryptoKey, iv: &[u8], aad: Option<&[u8]>, plain: &[u8]) -> Result<Vec<u8>> {
    let out = settle("encrypt", subtle()?.encrypt_with_object_and_u8_array(&gcm(iv, aad), key, plain)).await?;
    Ok(Uint8Array::new(&out).to_vec())
}

/// Decrypts and checks the tag; a wrong key, IV, associated data or altered ciphertext gives
/// `DECRYPT_FAILED`.
pub async fn decrypt(key: &CryptoKey, iv: &[u8], aad: Option<&[u8]>, data: &[u8], what: &str) -> Result<Vec<u8>> {
    let promise = subtle()?.decrypt_with_object_and_u8_array(&gcm(iv, aad), key, data);
    match settle("decrypt", promise).await {
        Ok(out) => Ok(Uint8Array::new(&out).to_vec()),
        Err(e) => Err(Error::new(ErrorCode::DecryptFailed, format!("{what} cannot be decrypted ({})", e.message))),
    }
}

/// PBKDF2-HMAC-SHA256 + AES-256-GCM through WebCrypto, for sealed exports.
pub mod passphrase {
    use super::*;

    async fn key(passphrase: &str, salt: &[u8], iterations: u32) -> Result<CryptoKey> {
        let subtle = subtle()?;
        let raw = Uint8Array::from(passphrase.as_bytes());
        let base =
            settle("importKey", subtle.import_key_with_str("raw", &raw, "PBKDF2", false, &usages(&["deriveKey"])))
                .await?
                .unchecked_into::<CryptoKey>();
        let params = Pbkdf2Params::new_with_str("PBKDF2", "SHA-256", iterations, &Uint8Array::from(salt));
        let target: Object = AesKeyGenParams::new("AES-GCM", 256).into();
        let key = settle(
            "deriveKey",
            subtle.derive_key_with_object_and_object(&params, &base, &target, false, &usages(&["encrypt", "decrypt"])),
        )
        .await?;
        Ok(key.unchecked_into())
    }

    pub async fn seal(
        passphrase: &str,
        salt: &[u8],
        iterations: u32,
        iv: &[u8],
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        encrypt(&key(passphrase, salt, iterations).await?, iv, Some(aad), plain).await
    }

    pub async fn open(
        passphrase: &str,
        salt: &[u8],
        iterations: u32,
        iv: &[u8],
        aad: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>> {
        let key = key(passphrase, salt, iterations).await?;
        decrypt(&key, iv, Some(aad), data, "the export").await.map_err(|_| {
            Error::new(
                ErrorCode::DecryptFailed,
                "the export cannot be opened: wrong passphrase, or the file was altered",
            )
        })
    }
}
