//! Web Push message encryption (RFC 8291, `aes128gcm` of RFC 8188) and the
//! VAPID authorization (RFC 8292, an ES256 JWT).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2_digest10::Sha256;

/// The record size written in the header (one record carries it all).
const RECORD_SIZE: u32 = 4096;

/// Why a message cannot be encrypted or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushCryptoError {
    /// The browser's key or auth secret is not what the protocol says.
    #[error("the subscription's {0} is not valid")]
    BadKey(&'static str),
    /// The message is too long for one record.
    #[error("the message is too long for a push notification")]
    TooLong,
    /// The cipher failed.
    #[error("encryption failed")]
    Cipher,
}

/// Decodes base64url (with or without padding).
pub fn b64(text: &str) -> Result<Vec<u8>, PushCryptoError> {
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| PushCryptoError::BadKey("base64url"))
}

/// Encodes base64url without padding.
pub fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The browser's public key, checked to be a point on P-256.
pub fn browser_key(p256dh: &[u8]) -> Result<PublicKey, PushCryptoError> {
    PublicKey::from_sec1_bytes(p256dh).map_err(|_| PushCryptoError::BadKey("p256dh key"))
}

fn expand(prk: &Hkdf<Sha256>, info: &[u8], out: &mut [u8]) -> Result<(), PushCryptoError> {
    prk.expand(info, out).map_err(|_| PushCryptoError::Cipher)
}

/// The content key and nonce (RFC 8291 §3.4): the ECDH secret bound to
/// both public keys and the browser's auth secret, then to the salt.
fn content_keys(
    shared: &[u8],
    auth: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    salt: &[u8],
) -> Result<([u8; 16], [u8; 12]), PushCryptoError> {
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ua_public);
    key_info.extend_from_slice(as_public);
    let mut ikm = [0u8; 32];
    expand(
        &Hkdf::<Sha256>::new(Some(auth), shared),
        &key_info,
        &mut ikm,
    )?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; 12];
    expand(&prk, b"Content-Encoding: aes128gcm\0", &mut cek)?;
    expand(&prk, b"Content-Encoding: nonce\0", &mut nonce)?;
    Ok((cek, nonce))
}

/// Encrypts `plaintext` for a browser (`ua_public`, `auth`) with the
/// sender's one-time key `as_secret` and `salt`: the whole message body.
pub fn encrypt(
    plaintext: &[u8],
    ua_public: &[u8],
    auth: &[u8],
    as_secret: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, PushCryptoError> {
    if auth.len() != 16 {
        return Err(PushCryptoError::BadKey("auth secret"));
    }
    if plaintext.len() + 17 > RECORD_SIZE as usize {
        return Err(PushCryptoError::TooLong);
    }
    let ua_key = browser_key(ua_public)?;
    let as_public = as_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(as_secret.to_nonzero_scalar(), ua_key.as_affine());

    let (cek, nonce) = content_keys(
        shared.raw_secret_bytes(),
        auth,
        ua_public,
        as_public.as_bytes(),
        salt,
    )?;

    // One record: the text and the last-record delimiter.
    let mut record = plaintext.to_vec();
    record.push(2);
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| PushCryptoError::Cipher)?;
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|_| PushCryptoError::Cipher)?;

    let mut body = Vec::with_capacity(86 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(65);
    body.extend_from_slice(as_public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Decrypts a message body as the browser does (`ua_private` is its raw
/// private key): what a receiving end, or a test standing in for one, reads.
pub fn decrypt(body: &[u8], ua_private: &[u8], auth: &[u8]) -> Result<Vec<u8>, PushCryptoError> {
    let ua_secret =
        SecretKey::from_slice(ua_private).map_err(|_| PushCryptoError::BadKey("private key"))?;
    if body.len() < 21 + 65 + 17 || body[20] != 65 {
        return Err(PushCryptoError::BadKey("message header"));
    }
    let salt = &body[..16];
    let as_public = &body[21..86];
    let sealed = &body[86..];
    let as_key = browser_key(as_public)?;
    let ua_public = ua_secret.public_key().to_encoded_point(false);
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_key.as_affine());
    let (cek, nonce) = content_keys(
        shared.raw_secret_bytes(),
        auth,
        ua_public.as_bytes(),
        as_public,
        salt,
    )?;
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|_| PushCryptoError::Cipher)?;
    let mut record = cipher
        .decrypt(&Nonce::from(nonce), sealed)
        .map_err(|_| PushCryptoError::Cipher)?;
    while record.last() == Some(&0) {
        record.pop();
    }
    if record.pop() != Some(2) {
        return Err(PushCryptoError::Cipher);
    }
    Ok(record)
}

/// The origin of a push endpoint (`https://host[:port]`), the JWT's audience.
pub fn audience(endpoint: &str) -> Option<String> {
    let url = reqwest::Url::parse(endpoint).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
}

/// The `Authorization` header of a push to `endpoint`: `vapid t=<JWT>,
/// k=<public key>`, valid for 12 hours from `now` (unix seconds).
pub fn vapid_authorization(
    key: &SigningKey,
    endpoint: &str,
    subject: &str,
    now: u64,
) -> Result<String, PushCryptoError> {
    let aud = audience(endpoint).ok_or(PushCryptoError::BadKey("endpoint"))?;
    let header = b64_encode(br#"{"typ":"JWT","alg":"ES256"}"#);
    let claims = serde_json::json!({ "aud": aud, "exp": now + 12 * 3600, "sub": subject });
    let claims = b64_encode(claims.to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let signature: Signature = key.sign(signing_input.as_bytes());
    let public = key.verifying_key().to_encoded_point(false);
    Ok(format!(
        "vapid t={signing_input}.{}, k={}",
        b64_encode(&signature.to_bytes()),
        b64_encode(public.as_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    // RFC 8291, Appendix A (published test data).
    const PLAINTEXT: &str = "When I grow up, I want to be a watermelon";
    const AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
    const UA_PUBLIC: &str =
        "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
    const SALT: &str = "DGv6ra1nlYgDCS1FRnbzlw";
    const BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";

    #[test]
    fn encryption_matches_the_rfc_8291_example_to_the_byte() {
        let secret = SecretKey::from_slice(&b64(AS_PRIVATE).unwrap()).unwrap();
        let salt: [u8; 16] = b64(SALT).unwrap().try_into().unwrap();
        let body = encrypt(
            PLAINTEXT.as_bytes(),
            &b64(UA_PUBLIC).unwrap(),
            &b64(AUTH).unwrap(),
            &secret,
            &salt,
        )
        .unwrap();
        assert_eq!(b64_encode(&body), BODY);
    }

    #[test]
    fn decryption_reads_the_rfc_8291_example_and_refuses_tampering() {
        const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
        let ua = b64(UA_PRIVATE).unwrap();
        let auth = b64(AUTH).unwrap();
        let mut body = b64(BODY).unwrap();
        assert_eq!(decrypt(&body, &ua, &auth).unwrap(), PLAINTEXT.as_bytes());
        let last = body.len() - 1;
        body[last] ^= 1;
        assert_eq!(decrypt(&body, &ua, &auth), Err(PushCryptoError::Cipher));
        assert!(decrypt(&body[..40], &ua, &auth).is_err());
    }

    #[test]
    fn bad_keys_and_long_messages_are_refused() {
        let secret = SecretKey::from_slice(&b64(AS_PRIVATE).unwrap()).unwrap();
        let salt = [0u8; 16];
        let ua = b64(UA_PUBLIC).unwrap();
        let auth = b64(AUTH).unwrap();
        assert_eq!(
            encrypt(b"x", &ua[..30], &auth, &secret, &salt),
            Err(PushCryptoError::BadKey("p256dh key"))
        );
        assert_eq!(
            encrypt(b"x", &ua, &auth[..8], &secret, &salt),
            Err(PushCryptoError::BadKey("auth secret"))
        );
        assert_eq!(
            encrypt(&[b'a'; 5000], &ua, &auth, &secret, &salt),
            Err(PushCryptoError::TooLong)
        );
    }

    #[test]
    fn the_vapid_token_verifies_with_the_public_key_it_names() {
        let key = SigningKey::from_slice(&b64(AS_PRIVATE).unwrap()).unwrap();
        let header = vapid_authorization(
            &key,
            "https://push.example.net:8443/p/abc",
            "mailto:a@b",
            1000,
        )
        .unwrap();
        let (token, public) = header
            .strip_prefix("vapid t=")
            .unwrap()
            .split_once(", k=")
            .unwrap();
        let verifying = VerifyingKey::from_sec1_bytes(&b64(public).unwrap()).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = Signature::from_slice(&b64(signature).unwrap()).unwrap();
        assert!(verifying.verify(signed.as_bytes(), &signature).is_ok());
        let claims: serde_json::Value =
            serde_json::from_slice(&b64(signed.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(claims["aud"], "https://push.example.net:8443");
        assert_eq!(claims["exp"], 1000 + 12 * 3600);
        assert_eq!(audience("not a url"), None);
    }
}
