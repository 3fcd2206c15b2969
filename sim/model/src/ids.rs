//! Seeded identifiers. Every GUID, token and activity id comes from one ChaCha8 stream so
//! that the same seed gives the same bytes.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// The world's one id stream.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Ids {
    rng: ChaCha8Rng,
}

impl Ids {
    /// The stream of a seed.
    pub fn new(seed: u64) -> Self {
        Ids {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// A version-4-shaped GUID in lowercase, as Dataverse writes them.
    pub fn guid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        guid_text(b, 4)
    }

    /// `n` random bytes as lowercase hex (LCS environment ids are 32 hex digits).
    pub fn hex(&mut self, n: usize) -> String {
        let mut b = vec![0u8; n];
        self.rng.fill_bytes(&mut b);
        hex(&b)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// A GUID derived from names (SHA-256, shaped as a version-5 GUID): for ids that must be
/// stable without drawing from the stream (metadata ids, an app's service principal).
pub fn derived_guid(parts: &[&str]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, parts.join("\u{1f}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest.as_ref()[..16]);
    guid_text(b, 5)
}

/// 16 bytes as a lowercase 8-4-4-4-12 GUID of `version`, with the RFC 4122 variant bits.
fn guid_text(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        push_hex(&mut text, *byte);
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        push_hex(&mut text, *byte);
    }
    text
}

/// A byte as two lowercase hex digits (by hand: `format!` per byte was a visible share of
/// initial sync, which draws a GUID per row).
fn push_hex(text: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ids() {
        let (mut a, mut b) = (Ids::new(7), Ids::new(7));
        assert_eq!(a.guid(), b.guid());
        assert_ne!(a.guid(), Ids::new(8).guid());
        assert_eq!(a.guid().len(), 36);
        assert_eq!(
            guid_text([0xab; 16], 4),
            "abababab-abab-4bab-abab-abababababab"
        );
        assert_eq!(hex(&[0, 15, 16, 255]), "000f10ff");
    }
}
