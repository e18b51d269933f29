//! Signed tokens for links in messages (unsubscribe, tracking, confirmation): the
//! payload plus an HMAC-SHA256 under a per-installation key that lives in the
//! database, so every process of an installation signs and verifies alike.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{now, secrets};
use crate::db::schema::server_secrets;
use crate::db::{DbConnection, on_backend, write_transaction};
use crate::{Error, Result};

const KEY_NAME: &str = "link_signing_key";
const PREVIOUS_KEY_NAME: &str = "link_signing_key_previous";
/// 64 bits: enough that guessing a tag for someone else's delivery is hopeless.
const SHORT_TAG_BYTES: usize = 8;

/// What a token is for; a token made for one purpose is refused for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Confirm,
    Open,
    Click,
    /// The VERP return path of a delivery.
    Bounce,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Unsubscribe => b"unsubscribe",
            Purpose::Confirm => b"confirm",
            Purpose::Open => b"open",
            Purpose::Click => b"click",
            Purpose::Bounce => b"bounce",
        }
    }
}

#[derive(Clone)]
pub struct LinkSigner {
    /// Shared, so that handing the signer to each request (a tracking hit
    /// among them) copies no key.
    key: Arc<[u8]>,
    /// The key before the last rotation: links in messages already sent keep
    /// working until the next rotation.
    previous: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner { .. }")
    }
}

impl LinkSigner {
    /// The installation's signer, creating its key on first use.
    pub fn load(conn: &mut DbConnection) -> Result<LinkSigner> {
        write_transaction(conn, |conn| {
            // Processes starting at once on a new database (a server and its
            // workers) may each create the key: the first one written is kept
            // and the others read it.
            let candidate = secrets::random_token(64);
            on_backend!(conn, |c| diesel::insert_into(server_secrets::table)
                .values((
                    server_secrets::name.eq(KEY_NAME),
                    server_secrets::value.eq(&candidate),
                    server_secrets::created_at.eq(now()),
                ))
                .on_conflict_do_nothing()
                .execute(c))?;
            let key: String = server_secrets::table
                .find(KEY_NAME)
                .select(server_secrets::value)
                .first(conn)?;
            let previous: Option<String> = server_secrets::table
                .find(PREVIOUS_KEY_NAME)
                .select(server_secrets::value)
                .first(conn)
                .optional()?;
            Ok(LinkSigner {
                key: key.into_bytes().into(),
                previous: previous.map(|key| key.into_bytes().into()),
            })
        })
    }

    /// Replaces the installation's key with a new one; the old one stays
    /// valid for verifying (only) until the next rotation. Processes that are
    /// running keep the keys they loaded until they restart.
    pub fn rotate(conn: &mut DbConnection) -> Result<()> {
        write_transaction(conn, |conn| {
            let current = LinkSigner::load(conn)?;
            diesel::delete(server_secrets::table.find(PREVIOUS_KEY_NAME)).execute(conn)?;
            diesel::insert_into(server_secrets::table)
                .values((
                    server_secrets::name.eq(PREVIOUS_KEY_NAME),
                    server_secrets::value.eq(String::from_utf8_lossy(&current.key).into_owned()),
                    server_secrets::created_at.eq(now()),
                ))
                .execute(conn)?;
            diesel::update(server_secrets::table.find(KEY_NAME))
                .set(server_secrets::value.eq(secrets::random_token(64)))
                .execute(conn)?;
            Ok(())
        })
    }

    /// The current key first, then the previous one.
    fn keys(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(&*self.key).chain(self.previous.as_deref())
    }

    /// A short lower-case tag for places that are neither long nor
    /// case-preserving, such as the local part of an e-mail address.
    pub fn short_tag(&self, purpose: Purpose, payload: &str) -> String {
        let tag = self.mac(purpose, payload).finalize().into_bytes();
        hex::encode(&tag[..SHORT_TAG_BYTES])
    }

    pub fn verify_short_tag(&self, purpose: Purpose, payload: &str, tag: &str) -> bool {
        let Ok(given) = hex::decode(tag.to_ascii_lowercase()) else {
            return false;
        };
        given.len() == SHORT_TAG_BYTES
            && self.keys().any(|key| {
                mac(key, purpose, payload)
                    .verify_truncated_left(&given)
                    .is_ok()
            })
    }

    fn mac(&self, purpose: Purpose, payload: &str) -> Hmac<Sha256> {
        mac(&self.key, purpose, payload)
    }

    /// `base64url(payload).base64url(mac)`, safe in a URL path.
    pub fn sign(&self, purpose: Purpose, payload: &str) -> String {
        let tag = self.mac(purpose, payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The payload of a genuine token for `purpose`.
    pub fn verify(&self, purpose: Purpose, token: &str) -> Result<String> {
        let forged = || Error::invalid("token", "not a valid link");
        let (payload, tag) = token.split_once('.').ok_or_else(forged)?;
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).map_err(|_| forged())?)
            .map_err(|_| forged())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| forged())?;
        let genuine = self
            .keys()
            .any(|key| mac(key, purpose, &payload).verify_slice(&tag).is_ok());
        if !genuine {
            return Err(forged());
        }
        Ok(payload)
    }
}

fn mac(key: &[u8], purpose: Purpose, payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(purpose.tag());
    mac.update(b"\0");
    mac.update(payload.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_unchanged_and_for_their_purpose() {
        let signer = LinkSigner {
            key: b"k".as_slice().into(),
            previous: None,
        };
        let token = signer.sign(Purpose::Unsubscribe, "42");
        assert_eq!(signer.verify(Purpose::Unsubscribe, &token).unwrap(), "42");
        assert!(signer.verify(Purpose::Click, &token).is_err());
        let (_, tag) = token.split_once('.').unwrap();
        let tampered = format!("{}.{tag}", URL_SAFE_NO_PAD.encode("43"));
        assert!(signer.verify(Purpose::Unsubscribe, &tampered).is_err());
        assert!(signer.verify(Purpose::Unsubscribe, "garbage").is_err());
        let other = LinkSigner {
            key: b"other".as_slice().into(),
            previous: None,
        };
        assert!(other.verify(Purpose::Unsubscribe, &token).is_err());
        let tag = signer.short_tag(Purpose::Bounce, "42");
        assert_eq!(tag.len(), 16);
        assert!(signer.verify_short_tag(Purpose::Bounce, "42", &tag.to_uppercase()));
        assert!(!signer.verify_short_tag(Purpose::Bounce, "43", &tag));
        assert!(!signer.verify_short_tag(Purpose::Open, "42", &tag));
        // After a rotation the previous key still verifies, and signs nothing.
        let rotated = LinkSigner {
            key: b"new".as_slice().into(),
            previous: Some(b"k".as_slice().into()),
        };
        assert_eq!(rotated.verify(Purpose::Unsubscribe, &token).unwrap(), "42");
        assert!(rotated.verify_short_tag(Purpose::Bounce, "42", &tag));
        assert_ne!(rotated.sign(Purpose::Unsubscribe, "42"), token);
    }
}
