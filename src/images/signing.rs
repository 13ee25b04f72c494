//! Signed, expiring URLs: HMAC-SHA256 over a purpose, a key and an expiry.
//!
//! The purpose keeps an image signature from being replayed as another kind
//! of link (action links sign with their own purpose). Verification is in
//! constant time (`hmac`'s `verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// Why a signed URL was refused. Deliberately coarse: callers answer 403
/// either way and reveal nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    Expired,
    BadSignature,
}

#[derive(Clone)]
pub struct Signer {
    key: Secret,
}

impl Signer {
    pub fn new(key: Secret) -> Self {
        Self { key }
    }

    fn mac(&self, purpose: &str, subject: &str, expires: u64) -> Hmac<Sha256> {
        // HMAC takes keys of any length; the config requires ≥ 32 bytes.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        for part in [
            purpose.as_bytes(),
            b"\0",
            subject.as_bytes(),
            b"\0",
            expires.to_string().as_bytes(),
        ] {
            mac.update(part);
        }
        mac
    }

    /// Hex signature of (`purpose`, `subject`, `expires`).
    pub fn sign(&self, purpose: &str, subject: &str, expires: u64) -> String {
        hex::encode(self.mac(purpose, subject, expires).finalize().into_bytes())
    }

    /// Check a signature and that `expires` (unix seconds) is after `now`.
    pub fn verify(
        &self,
        purpose: &str,
        subject: &str,
        expires: u64,
        signature_hex: &str,
        now: u64,
    ) -> Result<(), Rejected> {
        let Ok(signature) = hex::decode(signature_hex) else {
            return Err(Rejected::BadSignature);
        };
        self.mac(purpose, subject, expires)
            .verify_slice(&signature)
            .map_err(|_| Rejected::BadSignature)?;
        if expires <= now {
            return Err(Rejected::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        Signer::new(Secret::new("k".repeat(32)))
    }

    #[test]
    fn a_signature_verifies_until_it_expires() {
        let sig = signer().sign("image", "abc", 1000);
        assert_eq!(signer().verify("image", "abc", 1000, &sig, 999), Ok(()));
        assert_eq!(
            signer().verify("image", "abc", 1000, &sig, 1000),
            Err(Rejected::Expired)
        );
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let sig = signer().sign("image", "abc", 1000);
        let bad = Err(Rejected::BadSignature);
        assert_eq!(signer().verify("image", "abd", 1000, &sig, 0), bad);
        assert_eq!(signer().verify("image", "abc", 1001, &sig, 0), bad);
        assert_eq!(signer().verify("action", "abc", 1000, &sig, 0), bad);
        assert_eq!(signer().verify("image", "abc", 1000, &sig[..62], 0), bad);
        assert_eq!(signer().verify("image", "abc", 1000, "zz", 0), bad);
        let other = Signer::new(Secret::new("x".repeat(32)));
        assert_eq!(other.verify("image", "abc", 1000, &sig, 0), bad);
    }
}
