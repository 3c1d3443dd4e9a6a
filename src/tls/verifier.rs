//! [`Verifier`]: embedded-tls's `TlsVerifier` on rustls-webpki (no alloc, no ring): the chain
//! to the given roots, the host name, and the server's TLS 1.3 CertificateVerify signature.

use core::time::Duration;

use embedded_tls::{
    CertificateEntryRef, CertificateRef, CertificateVerifyRef, SignatureScheme, TlsCipherSuite,
    TlsError, TlsVerifier,
};
use heapless::Vec;
use rustls_pki_types::{
    CertificateDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use sha2::Digest;
use webpki::{EndEntityCert, KeyUsage};

use super::{algs, der};

/// Most trust anchors a [`Verifier`] takes. They are parsed on the stack during
/// `verify_certificate`, about 80 bytes each.
pub const MAX_ANCHORS: usize = 8;
/// Most intermediates taken from the server's Certificate message (embedded-tls keeps at most
/// 16 entries, the leaf included).
pub const MAX_INTERMEDIATES: usize = 15;
/// Largest leaf SubjectPublicKeyInfo kept for CertificateVerify. A P-384 SPKI is 120 bytes,
/// P-256 91. (An RSA-2048 SPKI is 294: raise this if RSA is ever added.)
pub const MAX_SPKI_LEN: usize = 128;
/// Longest DNS name (RFC 1035).
pub const MAX_HOSTNAME_LEN: usize = 253;
/// Largest transcript hash (SHA-384).
const MAX_HASH_LEN: usize = 48;
/// RFC 8446 4.4.3: 64 spaces, the context string, a zero byte, the transcript hash.
const CONTEXT: &[u8] = b"TLS 1.3, server CertificateVerify\x00";
const SIGNED_LEN: usize = 64 + 34 + MAX_HASH_LEN;

/// Why the server's certificate or signature was refused ([`TlsFailure::Certificate`](super::TlsFailure::Certificate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CertError {
    /// No trust anchor, or more than [`MAX_ANCHORS`].
    AnchorCount {
        /// Anchors given.
        given: usize,
    },
    /// The anchor at `index` is not a certificate that can be a trust anchor.
    BadAnchor {
        /// Its index in the roots given.
        index: usize,
    },
    /// No wall clock: a certificate's validity cannot be checked.
    NoTime,
    /// No host name to check the certificate against.
    NoHostname,
    /// The host name is not a valid DNS name or IP address (or longer than
    /// [`MAX_HOSTNAME_LEN`]).
    BadHostname,
    /// The Certificate message is empty, holds a raw public key, or too many certificates.
    BadCertificateMessage,
    /// A handshake message came out of order (CertificateVerify before Certificate, a second
    /// one, anything after a failure).
    OutOfOrder,
    /// The chain does not lead to a trusted root (a wrong CA, a missing intermediate).
    UnknownIssuer,
    /// A certificate of the chain has expired.
    Expired,
    /// A certificate of the chain is not valid yet (or the clock is behind).
    NotValidYet,
    /// The certificate is not valid for the host name.
    NameMismatch,
    /// A certificate that is not a CA signed another one.
    EndEntityUsedAsCa,
    /// A signature in the chain is wrong, or uses an algorithm this build does not verify
    /// (RSA; P-384 without `tls-p384`).
    ChainSignature,
    /// The chain is otherwise invalid (extensions, key usage, name constraints, encoding).
    InvalidChain,
    /// The leaf's public key could not be read, or is larger than [`MAX_SPKI_LEN`].
    LeafKey,
    /// The server signed the handshake with a scheme this build does not verify (only ECDSA
    /// P-256/SHA-256, and P-384/SHA-384 with `tls-p384`).
    UnsupportedScheme,
    /// The handshake signature's scheme does not match the leaf key's type.
    SchemeKeyMismatch,
    /// The server's handshake signature is wrong: it does not hold the certificate's key.
    BadSignature,
}

impl core::fmt::Display for CertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::AnchorCount { given } => {
                write!(f, "{given} trust anchors given, 1 to {MAX_ANCHORS} needed")
            }
            Self::BadAnchor { index } => write!(f, "trust anchor {index} is not a CA certificate"),
            Self::NoTime => f.write_str("no wall clock to check certificate validity"),
            Self::NoHostname => f.write_str("no host name to check the certificate against"),
            Self::BadHostname => f.write_str("the host name is not a valid DNS name or address"),
            Self::BadCertificateMessage => f.write_str("malformed Certificate message"),
            Self::OutOfOrder => f.write_str("handshake messages out of order"),
            Self::UnknownIssuer => f.write_str("certificate not issued by a trusted root"),
            Self::Expired => f.write_str("certificate expired"),
            Self::NotValidYet => f.write_str("certificate not valid yet"),
            Self::NameMismatch => f.write_str("certificate not valid for the host name"),
            Self::EndEntityUsedAsCa => f.write_str("a non-CA certificate signed another"),
            Self::ChainSignature => {
                f.write_str("a chain signature is wrong or uses an unsupported algorithm")
            }
            Self::InvalidChain => f.write_str("invalid certificate chain"),
            Self::LeafKey => f.write_str("unreadable or oversize leaf public key"),
            Self::UnsupportedScheme => f.write_str("unsupported handshake signature scheme"),
            Self::SchemeKeyMismatch => {
                f.write_str("handshake signature scheme does not match the key")
            }
            Self::BadSignature => f.write_str("bad handshake signature"),
        }
    }
}

impl core::error::Error for CertError {}

impl CertError {
    fn from_webpki(e: &webpki::Error) -> Self {
        use webpki::Error as W;
        match e {
            W::UnknownIssuer => Self::UnknownIssuer,
            W::CertExpired { .. } => Self::Expired,
            W::CertNotValidYet { .. } => Self::NotValidYet,
            W::CertNotValidForName(_) => Self::NameMismatch,
            W::EndEntityUsedAsCa | W::CaUsedAsEndEntity => Self::EndEntityUsedAsCa,
            W::InvalidSignatureForPublicKey
            | W::UnsupportedSignatureAlgorithmContext(_)
            | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => Self::ChainSignature,
            _ => Self::InvalidChain,
        }
    }

    /// What `open()` returns. Never `TlsError::AbortHandshake`: embedded-tls 0.19 answers that
    /// with an unencrypted alert under a ChangeCipherSpec record header, which the server
    /// reads as a protocol violation. A plain error drops the connection; the reason stays in
    /// [`Verifier::last_error`].
    fn tls_error(self) -> TlsError {
        match self {
            Self::OutOfOrder => TlsError::InvalidHandshake,
            Self::UnsupportedScheme | Self::SchemeKeyMismatch => TlsError::InvalidSignatureScheme,
            Self::BadSignature => TlsError::InvalidSignature,
            Self::AnchorCount { .. }
            | Self::BadAnchor { .. }
            | Self::NoTime
            | Self::NoHostname
            | Self::BadHostname => TlsError::InternalError,
            _ => TlsError::InvalidCertificate,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the Certificate message.
    AwaitCertificate,
    /// Chain and name verified; waiting for CertificateVerify.
    AwaitCertificateVerify,
    /// Both verified: the server proved it holds the leaf's key.
    Verified,
    /// Something failed; every further call fails too.
    Failed,
}

/// Server certificate verification for embedded-tls.
///
/// Per handshake: [`set_now`](Self::set_now) (resets the state) → `TlsConnection::open` (which
/// calls `set_hostname_verification`, `verify_certificate`, `verify_signature`) → check
/// [`is_verified`](Self::is_verified) and drop the connection if it is `false`.
pub struct Verifier<'a> {
    anchors: &'a [&'a [u8]],
    now: Option<u64>,
    hostname: heapless::String<MAX_HOSTNAME_LEN>,
    state: State,
    /// Transcript hash through the Certificate message.
    transcript: Vec<u8, MAX_HASH_LEN>,
    /// The leaf's SubjectPublicKeyInfo (whole SEQUENCE).
    spki: Vec<u8, MAX_SPKI_LEN>,
    last_error: Option<CertError>,
}

impl<'a> Verifier<'a> {
    /// A verifier trusting `anchors` (each one a DER X.509 certificate, typically a root or
    /// an intermediate CA to pin). Every anchor is parsed once here so that a bad one is
    /// reported at start-up rather than at the first handshake.
    ///
    /// # Errors
    /// [`CertError::AnchorCount`] or [`CertError::BadAnchor`].
    pub fn new(anchors: &'a [&'a [u8]]) -> Result<Self, CertError> {
        if anchors.is_empty() || anchors.len() > MAX_ANCHORS {
            return Err(CertError::AnchorCount {
                given: anchors.len(),
            });
        }
        for (i, der) in anchors.iter().enumerate() {
            let cert = CertificateDer::from_slice(der);
            webpki::anchor_from_trusted_cert(&cert)
                .map_err(|_| CertError::BadAnchor { index: i })?;
        }
        Ok(Self {
            anchors,
            now: None,
            hostname: heapless::String::new(),
            state: State::AwaitCertificate,
            transcript: Vec::new(),
            spki: Vec::new(),
            last_error: None,
        })
    }

    /// Sets the validation time (Unix seconds, from the device's wall clock) and starts a new
    /// handshake: the state, the host name and the last error are cleared. Call it before
    /// every `open()`.
    pub fn set_now(&mut self, unix_seconds: u64) {
        self.now = Some(unix_seconds);
        self.reset();
    }

    /// `true` only once the chain, the host name and the CertificateVerify signature were all
    /// verified in this handshake. `open()` returning `Ok` is NOT enough: embedded-tls 0.19
    /// accepts a server Finished that came without Certificate and CertificateVerify.
    #[must_use]
    pub fn is_verified(&self) -> bool {
        self.state == State::Verified
    }

    /// Why the last handshake was refused, if it was.
    #[must_use]
    pub const fn last_error(&self) -> Option<CertError> {
        self.last_error
    }

    fn reset(&mut self) {
        self.state = State::AwaitCertificate;
        self.hostname.clear();
        self.transcript.clear();
        self.spki.clear();
        self.last_error = None;
    }

    fn fail(&mut self, e: CertError) -> TlsError {
        let err = e.tls_error();
        self.state = State::Failed;
        self.spki.clear();
        self.transcript.clear();
        self.last_error = Some(e);
        err
    }

    fn check_certificate(
        &self,
        transcript: &[u8],
        cert: &CertificateRef<'_>,
    ) -> Result<(Vec<u8, MAX_HASH_LEN>, Vec<u8, MAX_SPKI_LEN>), CertError> {
        if self.state != State::AwaitCertificate {
            return Err(CertError::OutOfOrder);
        }
        let now = self.now.ok_or(CertError::NoTime)?;
        if self.hostname.is_empty() {
            return Err(CertError::NoHostname);
        }
        let name =
            ServerName::try_from(self.hostname.as_str()).map_err(|_| CertError::BadHostname)?;

        let (leaf, rest) = cert
            .entries
            .split_first()
            .ok_or(CertError::BadCertificateMessage)?;
        let CertificateEntryRef::X509(leaf) = leaf else {
            return Err(CertError::BadCertificateMessage);
        };
        let leaf = CertificateDer::from_slice(leaf);

        let mut intermediates: Vec<CertificateDer<'_>, MAX_INTERMEDIATES> = Vec::new();
        for entry in rest {
            let CertificateEntryRef::X509(der) = entry else {
                return Err(CertError::BadCertificateMessage);
            };
            intermediates
                .push(CertificateDer::from_slice(der))
                .map_err(|_| CertError::BadCertificateMessage)?;
        }

        // TrustAnchor borrows the CertificateDer it came from, so both live on this stack
        // frame (no alloc to keep them in `self`).
        let mut anchor_ders: Vec<CertificateDer<'_>, MAX_ANCHORS> = Vec::new();
        for der in self.anchors {
            anchor_ders
                .push(CertificateDer::from_slice(der))
                .map_err(|_| CertError::AnchorCount {
                    given: self.anchors.len(),
                })?;
        }
        let mut anchors: Vec<TrustAnchor<'_>, MAX_ANCHORS> = Vec::new();
        for (i, der) in anchor_ders.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(der)
                .map_err(|_| CertError::BadAnchor { index: i })?;
            anchors.push(anchor).map_err(|_| CertError::AnchorCount {
                given: self.anchors.len(),
            })?;
        }

        let ee = EndEntityCert::try_from(&leaf).map_err(|e| CertError::from_webpki(&e))?;
        ee.verify_for_usage(
            algs::ALL,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(now)),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|e| CertError::from_webpki(&e))?;
        ee.verify_is_valid_for_subject_name(&name)
            .map_err(|e| CertError::from_webpki(&e))?;

        let spki = der::certificate_spki(leaf.as_ref()).ok_or(CertError::LeafKey)?;
        let spki = Vec::from_slice(spki).map_err(|_| CertError::LeafKey)?;
        let transcript = Vec::from_slice(transcript).map_err(|_| CertError::OutOfOrder)?;
        Ok((transcript, spki))
    }

    fn check_signature(&self, verify: &CertificateVerifyRef<'_>) -> Result<(), CertError> {
        if self.state != State::AwaitCertificateVerify {
            return Err(CertError::OutOfOrder);
        }
        let alg: &dyn SignatureVerificationAlgorithm = match verify.signature_scheme {
            SignatureScheme::EcdsaSecp256r1Sha256 => &algs::ECDSA_P256_SHA256,
            #[cfg(feature = "tls-p384")]
            SignatureScheme::EcdsaSecp384r1Sha384 => &algs::ECDSA_P384_SHA384,
            _ => return Err(CertError::UnsupportedScheme),
        };
        let (alg_id, key) = der::split_spki(&self.spki).ok_or(CertError::LeafKey)?;
        if alg_id != alg.public_key_alg_id().as_ref() {
            return Err(CertError::SchemeKeyMismatch);
        }

        let mut signed: Vec<u8, SIGNED_LEN> = Vec::new();
        let built = signed.resize(64, 0x20).is_ok()
            && signed.extend_from_slice(CONTEXT).is_ok()
            && signed.extend_from_slice(&self.transcript).is_ok();
        if !built {
            return Err(CertError::OutOfOrder);
        }

        alg.verify_signature(key, &signed, verify.signature)
            .map_err(|_| CertError::BadSignature)
    }
}

impl<CipherSuite: TlsCipherSuite> TlsVerifier<CipherSuite> for Verifier<'_> {
    /// Called by `open()` (only when the `TlsConfig` has a server name): starts the handshake.
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        self.reset();
        if self.hostname.push_str(hostname).is_err() {
            return Err(self.fail(CertError::BadHostname));
        }
        Ok(())
    }

    /// `transcript` is the running hash *including* the Certificate message itself
    /// (embedded-tls updates it in `ServerHandshake::read` before calling us), i.e. exactly
    /// what CertificateVerify signs.
    fn verify_certificate(
        &mut self,
        transcript: &CipherSuite::Hash,
        cert: CertificateRef<'_>,
    ) -> Result<(), TlsError> {
        let hash = transcript.clone().finalize();
        match self.check_certificate(&hash, &cert) {
            Ok((transcript, spki)) => {
                self.transcript = transcript;
                self.spki = spki;
                self.state = State::AwaitCertificateVerify;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), TlsError> {
        match self.check_signature(&verify) {
            Ok(()) => {
                self.state = State::Verified;
                self.spki.clear();
                self.transcript.clear();
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The state machine driven directly, as embedded-tls would: `set_hostname_verification`,
    //! `verify_certificate`, `verify_signature`, with rcgen certificates and CertificateVerify
    //! signatures made by rustls's ring signer (what a TLS 1.3 server does).

    use std::string::String;
    use std::vec::Vec;
    use std::{format, vec};

    use embedded_tls::{
        Aes128GcmSha256, CertificateEntryRef, CertificateRef, CertificateVerifyRef,
        SignatureScheme, TlsError, TlsVerifier,
    };
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, Issuer, KeyPair, SignatureAlgorithm, PKCS_ECDSA_P256_SHA256 as P256,
        PKCS_ECDSA_P384_SHA384 as P384,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use sha2::Digest;

    use super::{CertError, Verifier, MAX_ANCHORS, MAX_HOSTNAME_LEN};

    // --- Test PKI -------------------------------------------------------------------------

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn ca(name: &str, alg: &'static SignatureAlgorithm) -> CertifiedIssuer<'static, KeyPair> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        CertifiedIssuer::self_signed(p, KeyPair::generate_for(alg).unwrap()).unwrap()
    }

    fn intermediate(name: &str, parent: &Issuer<'_, KeyPair>) -> CertifiedIssuer<'static, KeyPair> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.distinguished_name.push(DnType::CommonName, name);
        CertifiedIssuer::signed_by(p, KeyPair::generate().unwrap(), parent).unwrap()
    }

    /// A server certificate as public CAs issue them: basicConstraints CA:FALSE, serverAuth.
    fn leaf_params(names: &[&str]) -> CertificateParams {
        let names: Vec<String> = names.iter().map(|s| (*s).into()).collect();
        let mut p = CertificateParams::new(names.clone()).unwrap();
        p.is_ca = IsCa::ExplicitNoCa;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("leaf", String::as_str),
        );
        p
    }

    /// A server identity: the chain it sends (leaf first) and the leaf's key (PKCS#8).
    struct Identity {
        chain: Vec<Vec<u8>>,
        key: Vec<u8>,
    }

    impl Identity {
        fn leaf(&self) -> &[u8] {
            &self.chain[0]
        }

        /// The server's CertificateVerify signature over `transcript`, with the scheme the
        /// key's type calls for.
        fn sign(&self, transcript: &[u8]) -> Vec<u8> {
            let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
            let key = rustls::crypto::ring::sign::any_ecdsa_type(&der).unwrap();
            let signer = key
                .choose_scheme(&[
                    rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
                    rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
                ])
                .unwrap();
            signer.sign(&signed_content(transcript)).unwrap()
        }
    }

    fn leaf(
        params: CertificateParams,
        issuer: &Issuer<'_, KeyPair>,
        alg: &'static SignatureAlgorithm,
    ) -> Identity {
        let key = KeyPair::generate_for(alg).unwrap();
        let cert = params.signed_by(&key, issuer).unwrap();
        Identity {
            chain: vec![cert.der().to_vec()],
            key: key.serialize_der(),
        }
    }

    /// A root and a leaf for "localhost" it signed, both with keys of type `alg`.
    fn fixture(alg: &'static SignatureAlgorithm) -> (Vec<u8>, Identity) {
        let root = ca("root", alg);
        let id = leaf(leaf_params(&["localhost"]), &root, alg);
        (root.der().to_vec(), id)
    }

    /// What a TLS 1.3 server signs in CertificateVerify (RFC 8446 4.4.3).
    fn signed_content(hash: &[u8]) -> Vec<u8> {
        let mut m = vec![0x20u8; 64];
        m.extend_from_slice(b"TLS 1.3, server CertificateVerify\x00");
        m.extend_from_slice(hash);
        m
    }

    // --- Driving the verifier as embedded-tls does (TLS_AES_128_GCM_SHA256) -----------------

    type Suite = Aes128GcmSha256;

    /// The running handshake hash through the Certificate message.
    fn transcript() -> embedded_tls::Sha256 {
        let mut h = embedded_tls::Sha256::new();
        h.update(b"ClientHello..Certificate");
        h
    }

    fn transcript_hash() -> Vec<u8> {
        transcript().finalize().to_vec()
    }

    fn cert<'c>(entries: &[&'c [u8]]) -> CertificateRef<'c> {
        let mut c = CertificateRef::with_context(&[]);
        for e in entries {
            c.add(CertificateEntryRef::X509(e)).unwrap();
        }
        c
    }

    fn on_hostname(v: &mut Verifier<'_>, host: &str) -> Result<(), TlsError> {
        TlsVerifier::<Suite>::set_hostname_verification(v, host)
    }

    fn on_certificate(v: &mut Verifier<'_>, c: CertificateRef<'_>) -> Result<(), TlsError> {
        TlsVerifier::<Suite>::verify_certificate(v, &transcript(), c)
    }

    fn on_verify(
        v: &mut Verifier<'_>,
        scheme: SignatureScheme,
        signature: &[u8],
    ) -> Result<(), TlsError> {
        TlsVerifier::<Suite>::verify_signature(
            v,
            CertificateVerifyRef {
                signature_scheme: scheme,
                signature,
            },
        )
    }

    /// A verifier at the start of a handshake to "localhost", now.
    fn started<'a>(anchors: &'a [&'a [u8]]) -> Verifier<'a> {
        let mut v = Verifier::new(anchors).unwrap();
        v.set_now(now());
        on_hostname(&mut v, "localhost").unwrap();
        v
    }

    /// The whole handshake with `id`'s chain and a signature by its key: `Ok` if verified.
    fn handshake(anchors: &[&[u8]], id: &Identity, host: &str, at: u64) -> Result<(), CertError> {
        let mut v = Verifier::new(anchors).unwrap();
        v.set_now(at);
        on_hostname(&mut v, host).unwrap();
        let chain: Vec<&[u8]> = id.chain.iter().map(Vec::as_slice).collect();
        let done = on_certificate(&mut v, cert(&chain)).and_then(|()| {
            let sig = id.sign(&transcript_hash());
            on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig)
        });
        match done {
            Ok(()) => {
                assert!(v.is_verified());
                assert_eq!(v.last_error(), None);
                Ok(())
            }
            Err(e) => {
                assert!(!v.is_verified());
                let cert_error = v.last_error().unwrap();
                assert_tls_error(e, cert_error);
                Err(cert_error)
            }
        }
    }

    /// The `TlsError` that `open()` returns for each reason (never `AbortHandshake`, whose
    /// alert embedded-tls 0.19 sends malformed).
    fn assert_tls_error(got: TlsError, reason: CertError) {
        let expected = match reason {
            CertError::OutOfOrder => matches!(got, TlsError::InvalidHandshake),
            CertError::UnsupportedScheme | CertError::SchemeKeyMismatch => {
                matches!(got, TlsError::InvalidSignatureScheme)
            }
            CertError::BadSignature => matches!(got, TlsError::InvalidSignature),
            CertError::AnchorCount { .. }
            | CertError::BadAnchor { .. }
            | CertError::NoTime
            | CertError::NoHostname
            | CertError::BadHostname => matches!(got, TlsError::InternalError),
            _ => matches!(got, TlsError::InvalidCertificate),
        };
        assert!(expected, "{reason:?} returned {got:?}");
    }

    /// `r` is a refusal for `reason`, and the verdict is "not verified".
    #[track_caller]
    fn assert_refused(v: &Verifier<'_>, r: Result<(), TlsError>, reason: CertError) {
        let Err(e) = r else {
            panic!("accepted, expected {reason:?}")
        };
        assert!(!v.is_verified());
        assert_eq!(v.last_error(), Some(reason));
        assert_tls_error(e, reason);
    }

    // --- State machine (ported from the prototype's loopback tests) -------------------------

    /// A P-384 leaf under a P-256 root (its chain verifies in every build) whose
    /// CertificateVerify comes with `scheme`: refused for `reason`.
    fn p384_leaf_signing_as(scheme: SignatureScheme, reason: CertError) {
        let root = ca("root", &P256);
        let id = leaf(leaf_params(&["localhost"]), &root, &P384);
        let anchors = [root.der().as_ref()];
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        let sig = id.sign(&transcript_hash());
        let r = on_verify(&mut v, scheme, &sig);
        assert_refused(&v, r, reason);
    }

    #[test]
    fn full_sequence_verifies() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        assert!(!v.is_verified(), "not verified before CertificateVerify");
        assert_eq!(v.last_error(), None);
        let sig = id.sign(&transcript_hash());
        on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig).unwrap();
        assert!(v.is_verified());
        assert_eq!(v.last_error(), None);
        // A second CertificateVerify is out of order and revokes the verdict.
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig);
        assert_refused(&v, r, CertError::OutOfOrder);
    }

    #[cfg(feature = "tls-p384")]
    #[test]
    fn p384_certificate_verify() {
        // P-384 everywhere, under TLS_AES_256_GCM_SHA384: the 48-byte transcript hash is the
        // largest the verifier keeps.
        use embedded_tls::Aes256GcmSha384;
        let (root, id) = fixture(&P384);
        let anchors = [root.as_slice()];
        let mut v = Verifier::new(&anchors).unwrap();
        v.set_now(now());
        TlsVerifier::<Aes256GcmSha384>::set_hostname_verification(&mut v, "localhost").unwrap();
        let mut t = embedded_tls::Sha384::new();
        t.update(b"ClientHello..Certificate");
        TlsVerifier::<Aes256GcmSha384>::verify_certificate(&mut v, &t, cert(&[id.leaf()])).unwrap();
        let sig = id.sign(&t.finalize());
        TlsVerifier::<Aes256GcmSha384>::verify_signature(
            &mut v,
            CertificateVerifyRef {
                signature_scheme: SignatureScheme::EcdsaSecp384r1Sha384,
                signature: &sig,
            },
        )
        .unwrap();
        assert!(v.is_verified());
        assert_eq!(v.last_error(), None);
    }

    #[cfg(not(feature = "tls-p384"))]
    #[test]
    fn p384_is_refused_without_tls_p384() {
        // The chain: a P-384 root's signature is one this build does not verify.
        let (root, id) = fixture(&P384);
        let anchors = [root.as_slice()];
        let mut v = started(&anchors);
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::ChainSignature);
        // The handshake signature: a P-384 leaf under a P-256 root passes the chain, but its
        // ecdsa_secp384r1_sha384 CertificateVerify cannot be checked.
        p384_leaf_signing_as(
            SignatureScheme::EcdsaSecp384r1Sha384,
            CertError::UnsupportedScheme,
        );
    }

    #[test]
    fn certificate_verify_before_certificate_is_an_error_not_a_panic() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let mut v = started(&anchors);
        // Even a signature that would be valid for the transcript.
        let sig = id.sign(&transcript_hash());
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig);
        assert_refused(&v, r, CertError::OutOfOrder);
        // Garbage too.
        let mut v = started(&anchors);
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &[0x30, 0]);
        assert_refused(&v, r, CertError::OutOfOrder);
    }

    #[test]
    fn certificate_without_certificate_verify_is_not_verified() {
        // What a MITM gets if it can make the client skip CertificateVerify: embedded-tls
        // would still finish the handshake; is_verified() says no.
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        assert!(!v.is_verified());
        assert_eq!(v.last_error(), None);
    }

    #[test]
    fn nothing_at_all_is_not_verified() {
        let (root, _) = fixture(&P256);
        let anchors = [root.as_slice()];
        let v = Verifier::new(&anchors).unwrap();
        assert!(!v.is_verified());
        assert_eq!(v.last_error(), None);
        let v = started(&anchors);
        assert!(!v.is_verified());
        assert_eq!(v.last_error(), None);
    }

    #[test]
    fn signature_over_another_transcript_is_refused() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        let mut other = transcript();
        other.update(b"tampered");
        let sig = id.sign(&other.finalize());
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig);
        assert_refused(&v, r, CertError::BadSignature);
    }

    #[test]
    fn signature_by_another_key_is_refused() {
        // A valid certificate replayed by a server that does not hold its key: it signs the
        // right transcript with a key of its own (certified by the same CA, even).
        let root = ca("root", &P256);
        let id = leaf(leaf_params(&["localhost"]), &root, &P256);
        let impostor = leaf(leaf_params(&["localhost"]), &root, &P256);
        let anchors = [root.der().as_ref()];
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        let sig = impostor.sign(&transcript_hash());
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig);
        assert_refused(&v, r, CertError::BadSignature);
        // And the right key's signature with one bit flipped, or malformed.
        let mut sig = id.sign(&transcript_hash());
        let last = sig.len() - 1;
        sig[last] ^= 1;
        for bad in [&sig[..], &[], &[0x30, 0]] {
            let mut v = started(&anchors);
            on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
            let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, bad);
            assert_refused(&v, r, CertError::BadSignature);
        }
    }

    #[test]
    fn scheme_must_match_the_leaf_key() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        // A P-256 key's genuine signature announced as ecdsa_secp384r1_sha384.
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        let sig = id.sign(&transcript_hash());
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp384r1Sha384, &sig);
        #[cfg(feature = "tls-p384")]
        assert_refused(&v, r, CertError::SchemeKeyMismatch);
        #[cfg(not(feature = "tls-p384"))]
        assert_refused(&v, r, CertError::UnsupportedScheme);
        // RSA and EdDSA are never verified.
        for scheme in [
            SignatureScheme::RsaPssRsaeSha256,
            SignatureScheme::RsaPkcs1Sha256,
            SignatureScheme::Ed25519,
        ] {
            let mut v = started(&anchors);
            on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
            let r = on_verify(&mut v, scheme, &[0; 256]);
            assert_refused(&v, r, CertError::UnsupportedScheme);
        }
    }

    #[test]
    fn p256_scheme_with_a_p384_leaf_key_is_refused() {
        // A P-384 leaf under a P-256 root: its chain verifies with or without `tls-p384`, and
        // an ecdsa_secp256r1_sha256 CertificateVerify does not match its key.
        p384_leaf_signing_as(
            SignatureScheme::EcdsaSecp256r1Sha256,
            CertError::SchemeKeyMismatch,
        );
    }

    #[test]
    fn no_time_and_no_host_name_fail_closed() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let mut v = Verifier::new(&anchors).unwrap();
        on_hostname(&mut v, "localhost").unwrap();
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::NoTime);

        // embedded-tls calls set_hostname_verification only if the config has a server name.
        let mut v = Verifier::new(&anchors).unwrap();
        v.set_now(now());
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::NoHostname);
    }

    #[test]
    fn bad_host_names_fail_closed() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        // Longer than any DNS name: refused as soon as it is given.
        let long = "a".repeat(MAX_HOSTNAME_LEN + 1);
        let mut v = Verifier::new(&anchors).unwrap();
        v.set_now(now());
        let r = on_hostname(&mut v, &long);
        assert_refused(&v, r, CertError::BadHostname);
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::OutOfOrder);
        // Not a DNS name nor an address: refused at the Certificate.
        let mut v = Verifier::new(&anchors).unwrap();
        v.set_now(now());
        on_hostname(&mut v, "local host").unwrap();
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::BadHostname);
    }

    #[test]
    fn set_now_starts_a_new_handshake() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        let sig = id.sign(&transcript_hash());
        on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig).unwrap();
        assert!(v.is_verified());
        v.set_now(now());
        assert!(
            !v.is_verified(),
            "a verdict never carries over to the next connection"
        );
        assert_eq!(v.last_error(), None);
        // Nor does a refusal: the next handshake starts clean and can succeed.
        on_hostname(&mut v, "localhost").unwrap();
        let r = on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig);
        assert_refused(&v, r, CertError::OutOfOrder);
        v.set_now(now());
        assert_eq!(v.last_error(), None);
        on_hostname(&mut v, "localhost").unwrap();
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig).unwrap();
        assert!(v.is_verified());
        assert_eq!(v.last_error(), None);
    }

    #[test]
    fn a_refusal_is_final_for_the_handshake() {
        // After a refused Certificate, neither the right signature nor a second, valid
        // Certificate turns the verdict around.
        let root = ca("root", &P256);
        let id = leaf(leaf_params(&["localhost"]), &root, &P256);
        let other = leaf(leaf_params(&["other.example"]), &root, &P256);
        let anchors = [root.der().as_ref()];
        let mut v = started(&anchors);
        let r = on_certificate(&mut v, cert(&[other.leaf()]));
        assert_refused(&v, r, CertError::NameMismatch);
        let r = on_verify(
            &mut v,
            SignatureScheme::EcdsaSecp256r1Sha256,
            &other.sign(&transcript_hash()),
        );
        assert_refused(&v, r, CertError::OutOfOrder);
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::OutOfOrder);
        // A second Certificate after a good one is out of order as well.
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[id.leaf()])).unwrap();
        let r = on_certificate(&mut v, cert(&[id.leaf()]));
        assert_refused(&v, r, CertError::OutOfOrder);
        let r = on_verify(
            &mut v,
            SignatureScheme::EcdsaSecp256r1Sha256,
            &id.sign(&transcript_hash()),
        );
        assert_refused(&v, r, CertError::OutOfOrder);
    }

    #[test]
    fn hostile_certificate_messages_do_not_panic() {
        let (root, id) = fixture(&P256);
        let anchors = [root.as_slice()];
        let leaf = id.leaf();
        // Empty message.
        let mut v = started(&anchors);
        let r = on_certificate(&mut v, CertificateRef::with_context(&[]));
        assert_refused(&v, r, CertError::BadCertificateMessage);
        // Every truncation of the leaf: never a valid certificate.
        for n in 0..leaf.len() {
            let mut v = started(&anchors);
            let r = on_certificate(&mut v, cert(&[&leaf[..n]]));
            assert_refused(&v, r, CertError::InvalidChain);
        }
        // Every byte flipped: refused. The CA's signature covers the TBSCertificate, webpki
        // compares the outer signatureAlgorithm with the signed one, and the rest is DER
        // structure, so no flip can survive.
        for i in 0..leaf.len() {
            let mut bad = leaf.to_vec();
            bad[i] ^= 0x41;
            let mut v = started(&anchors);
            let r = on_certificate(&mut v, cert(&[&bad]));
            assert!(r.is_err(), "flip at {i} accepted");
            assert!(!v.is_verified());
            let e = v.last_error().unwrap();
            assert!(
                matches!(
                    e,
                    // DER or encoding broken; the CA's signature no longer matches; the
                    // issuer's name no longer names the root.
                    CertError::InvalidChain | CertError::ChainSignature | CertError::UnknownIssuer
                ),
                "flip at {i}: {e:?}"
            );
            assert_tls_error(r.unwrap_err(), e);
        }
        // A raw public key, as the leaf or after it.
        let mut v = started(&anchors);
        let mut c = CertificateRef::with_context(&[]);
        c.add(CertificateEntryRef::RawPublicKey(leaf)).unwrap();
        let r = on_certificate(&mut v, c);
        assert_refused(&v, r, CertError::BadCertificateMessage);
        let mut v = started(&anchors);
        let mut c = cert(&[leaf]);
        c.add(CertificateEntryRef::RawPublicKey(leaf)).unwrap();
        let r = on_certificate(&mut v, c);
        assert_refused(&v, r, CertError::BadCertificateMessage);
        // Garbage after a good leaf (an "intermediate" that is not a certificate) is ignored
        // by path building: the leaf's own chain still verifies.
        let mut v = started(&anchors);
        on_certificate(&mut v, cert(&[leaf, b"junk", &[]])).unwrap();
        let sig = id.sign(&transcript_hash());
        on_verify(&mut v, SignatureScheme::EcdsaSecp256r1Sha256, &sig).unwrap();
        assert!(v.is_verified());
    }

    #[test]
    fn bad_anchors_are_reported_at_construction() {
        assert_eq!(
            Verifier::new(&[]).err(),
            Some(CertError::AnchorCount { given: 0 })
        );
        assert_eq!(
            Verifier::new(&[b"not a certificate"]).err(),
            Some(CertError::BadAnchor { index: 0 })
        );
        let (root, _) = fixture(&P256);
        assert_eq!(
            Verifier::new(&[root.as_slice(), &root[..root.len() / 2]]).err(),
            Some(CertError::BadAnchor { index: 1 })
        );
        let nine = [root.as_slice(); MAX_ANCHORS + 1];
        assert_eq!(
            Verifier::new(&nine).err(),
            Some(CertError::AnchorCount {
                given: MAX_ANCHORS + 1
            })
        );
        let eight = [root.as_slice(); MAX_ANCHORS];
        assert!(Verifier::new(&eight).is_ok());
    }

    // --- The chain and the name (the prototype checked these over loopback) -------------------

    #[test]
    fn several_anchors_the_right_one_among_them() {
        let other = ca("other", &P256);
        let root = ca("root", &P256);
        let id = leaf(leaf_params(&["localhost"]), &root, &P256);
        let anchors = [other.der().as_ref(), root.der().as_ref()];
        assert_eq!(handshake(&anchors, &id, "localhost", now()), Ok(()));
    }

    #[test]
    fn wrong_ca_is_refused() {
        let root = ca("root", &P256);
        let other = ca("other", &P256);
        let id = leaf(leaf_params(&["localhost"]), &root, &P256);
        let anchors = [other.der().as_ref()];
        assert_eq!(
            handshake(&anchors, &id, "localhost", now()),
            Err(CertError::UnknownIssuer)
        );
    }

    #[test]
    fn validity_period_is_checked_at_the_given_time() {
        let root = ca("root", &P256);
        let mut p = leaf_params(&["localhost"]);
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let id = leaf(p, &root, &P256);
        let anchors = [root.der().as_ref()];
        // 2000-07-01: inside; now: expired; 1999-01-01: not valid yet.
        assert_eq!(handshake(&anchors, &id, "localhost", 962_409_600), Ok(()));
        assert_eq!(
            handshake(&anchors, &id, "localhost", now()),
            Err(CertError::Expired)
        );
        assert_eq!(
            handshake(&anchors, &id, "localhost", 915_148_800),
            Err(CertError::NotValidYet)
        );
    }

    #[test]
    fn wrong_host_name_is_refused() {
        let root = ca("root", &P256);
        let id = leaf(leaf_params(&["other.example"]), &root, &P256);
        let anchors = [root.der().as_ref()];
        assert_eq!(
            handshake(&anchors, &id, "localhost", now()),
            Err(CertError::NameMismatch)
        );
        assert_eq!(handshake(&anchors, &id, "other.example", now()), Ok(()));
        assert_eq!(
            handshake(&anchors, &id, "sub.other.example", now()),
            Err(CertError::NameMismatch)
        );
    }

    #[test]
    fn leaf_signed_by_a_leaf_is_refused() {
        // A genuine leaf for "attacker.example" (CA:FALSE) signs a forged leaf for
        // "localhost".
        let root = ca("root", &P256);
        let real_params = leaf_params(&["attacker.example"]);
        let real_key = KeyPair::generate().unwrap();
        let real = real_params.signed_by(&real_key, &root).unwrap();
        let real_issuer = Issuer::new(real_params, real_key);
        let mut forged = leaf(leaf_params(&["localhost"]), &real_issuer, &P256);
        forged.chain.push(real.der().to_vec());
        let anchors = [root.der().as_ref()];
        assert_eq!(
            handshake(&anchors, &forged, "localhost", now()),
            Err(CertError::EndEntityUsedAsCa)
        );
    }

    #[test]
    fn intermediates_are_needed_and_used() {
        let root = ca("root", &P256);
        let inter = intermediate("intermediate", &root);
        let mut id = leaf(leaf_params(&["localhost"]), &inter, &P256);
        let anchors = [root.der().as_ref()];
        assert_eq!(
            handshake(&anchors, &id, "localhost", now()),
            Err(CertError::UnknownIssuer),
            "intermediate not sent"
        );
        id.chain.push(inter.der().to_vec());
        assert_eq!(handshake(&anchors, &id, "localhost", now()), Ok(()));
        // The intermediate as the anchor pins it.
        let pinned = [inter.der().as_ref()];
        assert_eq!(handshake(&pinned, &id, "localhost", now()), Ok(()));
    }

    #[cfg(feature = "tls-p384")]
    #[test]
    fn intermediate_under_a_p384_root_is_accepted() {
        // Like Let's Encrypt's ECDSA chain: a P-384 root signs (ecdsa-with-SHA384) a P-256
        // intermediate that signs a P-256 leaf.
        let root = ca("root-384", &P384);
        let inter = intermediate("intermediate", &root);
        let mut id = leaf(leaf_params(&["localhost"]), &inter, &P256);
        id.chain.push(inter.der().to_vec());
        let anchors = [root.der().as_ref()];
        assert_eq!(handshake(&anchors, &id, "localhost", now()), Ok(()));
    }

    #[test]
    fn errors_have_messages() {
        let e = CertError::AnchorCount { given: 9 };
        assert_eq!(format!("{e}"), "9 trust anchors given, 1 to 8 needed");
        assert_eq!(
            format!("{}", CertError::BadAnchor { index: 2 }),
            "trust anchor 2 is not a CA certificate"
        );
    }
}
