//! MD5 as the Uploads API takes it: 32 lower-case hexadecimal digits.
//!
//! The digest is aws-lc's (already linked in for TLS): assembly on x86_64
//! and aarch64, its portable C elsewhere. MD5 is serial over the whole file,
//! so its speed on one core is the floor of an upload with md5 on.

/// A running MD5.
#[derive(Clone)]
pub struct Md5 {
    state: aws_lc_sys::MD5_CTX,
}

impl Md5 {
    /// An empty digest.
    pub fn new() -> Self {
        // SAFETY: `MD5_CTX` is plain data; MD5_Init sets every field.
        let mut state = unsafe { std::mem::zeroed() };
        // SAFETY: `state` is a valid, exclusively borrowed context. It
        // returns 1 always.
        unsafe { aws_lc_sys::MD5_Init(&mut state) };
        Self { state }
    }

    /// Hashes `bytes` after what came before.
    pub fn update(&mut self, bytes: &[u8]) {
        // SAFETY: the context was initialised by `new`; the pointer and
        // length describe `bytes`, which outlives the call. It returns 1 always.
        unsafe { aws_lc_sys::MD5_Update(&mut self.state, bytes.as_ptr().cast(), bytes.len()) };
    }

    /// The digest of everything hashed.
    pub fn finalize(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: `out` has the 16 bytes MD5_Final writes; the context was
        // initialised by `new`. It returns 1 always.
        unsafe { aws_lc_sys::MD5_Final(out.as_mut_ptr(), &mut self.state) };
        out
    }

    /// The digest of `bytes`.
    pub fn digest(bytes: &[u8]) -> [u8; 16] {
        let mut md5 = Self::new();
        md5.update(bytes);
        md5.finalize()
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Md5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Md5")
    }
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // RFC 1321's test suite.
        for (input, want) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(hex(&Md5::digest(input.as_bytes())), want, "{input:?}");
        }
    }

    #[test]
    fn pieces_hash_as_the_whole() {
        let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = Md5::digest(&bytes);
        for cut in [1, 63, 64, 65, 4096, 99_999] {
            let mut md5 = Md5::new();
            for piece in bytes.chunks(cut) {
                md5.update(piece);
            }
            assert_eq!(md5.finalize(), whole, "pieces of {cut}");
        }
    }
}
