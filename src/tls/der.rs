//! Just enough DER to find a certificate's SubjectPublicKeyInfo and split an SPKI.
//!
//! Only ever run on a leaf that rustls-webpki has already parsed and verified, but it is
//! written for hostile input anyway: no indexing, no arithmetic that can overflow, every
//! failure is `None`.

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const CONTEXT_0: u8 = 0xa0; // [0] EXPLICIT version

/// One TLV: (tag, contents, rest of the input after it).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        // Long form: 1..=3 length octets are plenty for a certificate (< 16 MiB).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let (octets, r) = rest.split_at_checked(n)?;
        rest = r;
        let mut len = 0usize;
        for &o in octets {
            len = len.checked_mul(256)?.checked_add(usize::from(o))?;
        }
        if len < 0x80 {
            return None; // not minimal: DER forbids it
        }
        len
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The whole DER of the subjectPublicKeyInfo SEQUENCE (tag and length included) of an X.509
/// certificate.
pub(crate) fn certificate_spki(cert: &[u8]) -> Option<&[u8]> {
    let (tag, cert_body, _) = tlv(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = tlv(cert_body)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    // Optional [0] version.
    if rest.first() == Some(&CONTEXT_0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (tag, _, after) = tlv(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let spki_len = rest.len().checked_sub(after.len())?;
    rest.get(..spki_len)
}

/// Splits an SPKI (as returned by [`certificate_spki`]) into the contents of its
/// AlgorithmIdentifier SEQUENCE (the form `pki_types::AlgorithmIdentifier` uses) and the
/// subjectPublicKey bits (for ECDSA, the SEC1 point).
pub(crate) fn split_spki(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, trailing) = tlv(spki)?;
    if tag != SEQUENCE || !trailing.is_empty() {
        return None;
    }
    let (tag, alg_id, rest) = tlv(body)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, bits, trailing) = tlv(rest)?;
    if tag != BIT_STRING || !trailing.is_empty() {
        return None;
    }
    // First octet: number of unused bits, which must be 0 for a key.
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    Some((alg_id, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        for input in [
            &[][..],
            &[0x30],
            &[0x30, 0x81],
            &[0x30, 0x84, 1, 2, 3, 4],
            &[0x30, 0x05, 1],
            &[0x30, 0x81, 0x05, 0, 0, 0, 0, 0],
            &[0x30, 0x02, 0x30, 0x00],
        ] {
            assert!(certificate_spki(input).is_none());
            assert!(split_spki(input).is_none());
        }
        // Every prefix of a well-formed structure fails cleanly.
        let spki = [0x30, 0x07, 0x30, 0x02, 0x06, 0x00, 0x03, 0x01, 0x00];
        assert!(split_spki(&spki).is_some());
        for n in 0..spki.len() {
            assert!(split_spki(spki.get(..n).unwrap_or_default()).is_none());
        }
    }
}
