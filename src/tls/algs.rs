//! ECDSA `SignatureVerificationAlgorithm`s on RustCrypto (`p256`, `p384`), for rustls-webpki
//! without ring or aws-lc and without `alloc`.
//!
//! Each one parses the DER signature and the SEC1 point, hashes the message with the
//! signature algorithm's hash and verifies the prehash.

use core::fmt;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use rustls_pki_types::{
    alg_id, AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm,
};
#[cfg(feature = "tls-p384")]
use sha2::Sha384;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    #[cfg(feature = "tls-p384")]
    P384,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hash {
    Sha256,
    #[cfg(feature = "tls-p384")]
    Sha384,
}

/// One (curve, hash) pair.
pub(super) struct Ecdsa {
    curve: Curve,
    hash: Hash,
}

impl fmt::Debug for Ecdsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let curve = match self.curve {
            Curve::P256 => "P-256",
            #[cfg(feature = "tls-p384")]
            Curve::P384 => "P-384",
        };
        let hash = match self.hash {
            Hash::Sha256 => "SHA-256",
            #[cfg(feature = "tls-p384")]
            Hash::Sha384 => "SHA-384",
        };
        write!(f, "ECDSA {curve} {hash} (RustCrypto)")
    }
}

/// A hash output, without alloc.
enum Prehash {
    Sha256([u8; 32]),
    #[cfg(feature = "tls-p384")]
    Sha384([u8; 48]),
}

impl Prehash {
    fn of(hash: Hash, message: &[u8]) -> Self {
        match hash {
            Hash::Sha256 => Prehash::Sha256(Sha256::digest(message).into()),
            #[cfg(feature = "tls-p384")]
            Hash::Sha384 => Prehash::Sha384(Sha384::digest(message).into()),
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Prehash::Sha256(h) => h,
            #[cfg(feature = "tls-p384")]
            Prehash::Sha384(h) => h,
        }
    }
}

impl SignatureVerificationAlgorithm for Ecdsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let prehash = Prehash::of(self.hash, message);
        match self.curve {
            Curve::P256 => {
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let sig =
                    p256::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(prehash.as_slice(), &sig)
                    .map_err(|_| InvalidSignature)
            }
            #[cfg(feature = "tls-p384")]
            Curve::P384 => {
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(public_key)
                    .map_err(|_| InvalidSignature)?;
                let sig =
                    p384::ecdsa::Signature::from_der(signature).map_err(|_| InvalidSignature)?;
                key.verify_prehash(prehash.as_slice(), &sig)
                    .map_err(|_| InvalidSignature)
            }
        }
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        match self.curve {
            Curve::P256 => alg_id::ECDSA_P256,
            #[cfg(feature = "tls-p384")]
            Curve::P384 => alg_id::ECDSA_P384,
        }
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        match self.hash {
            Hash::Sha256 => alg_id::ECDSA_SHA256,
            #[cfg(feature = "tls-p384")]
            Hash::Sha384 => alg_id::ECDSA_SHA384,
        }
    }
}

/// ecdsa-with-SHA256 by a P-256 key (TLS 1.3 `ecdsa_secp256r1_sha256`).
pub(super) static ECDSA_P256_SHA256: Ecdsa = Ecdsa {
    curve: Curve::P256,
    hash: Hash::Sha256,
};
/// ecdsa-with-SHA384 by a P-256 key (certificates only).
#[cfg(feature = "tls-p384")]
pub(super) static ECDSA_P256_SHA384: Ecdsa = Ecdsa {
    curve: Curve::P256,
    hash: Hash::Sha384,
};
/// ecdsa-with-SHA256 by a P-384 key (certificates only).
#[cfg(feature = "tls-p384")]
pub(super) static ECDSA_P384_SHA256: Ecdsa = Ecdsa {
    curve: Curve::P384,
    hash: Hash::Sha256,
};
/// ecdsa-with-SHA384 by a P-384 key (TLS 1.3 `ecdsa_secp384r1_sha384`).
#[cfg(feature = "tls-p384")]
pub(super) static ECDSA_P384_SHA384: Ecdsa = Ecdsa {
    curve: Curve::P384,
    hash: Hash::Sha384,
};

/// Everything accepted in certificate signatures (path building).
#[cfg(feature = "tls-p384")]
pub(super) static ALL: &[&dyn SignatureVerificationAlgorithm] = &[
    &ECDSA_P256_SHA256,
    &ECDSA_P384_SHA384,
    &ECDSA_P256_SHA384,
    &ECDSA_P384_SHA256,
];
/// Everything accepted in certificate signatures (path building).
#[cfg(not(feature = "tls-p384"))]
pub(super) static ALL: &[&dyn SignatureVerificationAlgorithm] = &[&ECDSA_P256_SHA256];
