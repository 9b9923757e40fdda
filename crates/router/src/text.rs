//! Byte-level helpers shared by the matchers: percent-decoding, ASCII case folding, a
//! hash over the normalized bytes, and [`LiteralMap`], a map from literal segments that
//! is probed with a *raw* request segment without allocating.
//!
//! Normalizing on the fly (instead of decoding the request path into a `String` first)
//! is what keeps a lookup allocation-free: keys are normalized once at build time, and
//! the request bytes are normalized byte by byte while they are hashed or compared.

use std::collections::HashMap;

/// How raw bytes are normalized before they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Norm {
    /// Which escapes are decoded.
    pub(crate) decode: Decode,
    /// Whether ASCII letters are lowercased (after decoding).
    pub(crate) fold: bool,
}

/// Which escapes [`Norm`] decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decode {
    /// Bytes are taken as they are (host names).
    None,
    /// `%XX` is decoded (path segments).
    Percent,
    /// `%XX` is decoded and `+` means a space (query keys and values, as in
    /// `application/x-www-form-urlencoded`).
    Form,
}

impl Norm {
    /// Host names: case-insensitive, no escapes.
    pub(crate) const HOST: Self = Self {
        decode: Decode::None,
        fold: true,
    };

    /// Path segments: percent-decoded, folded when matching is case-insensitive.
    pub(crate) const fn path(fold: bool) -> Self {
        Self {
            decode: Decode::Percent,
            fold,
        }
    }

    /// Query keys and values: form-decoded, folded when asked.
    pub(crate) const fn form(fold: bool) -> Self {
        Self {
            decode: Decode::Form,
            fold,
        }
    }

    /// Whether `raw` normalizes to itself (modulo folding): then the fast paths apply.
    fn is_plain(self, raw: &[u8]) -> bool {
        match self.decode {
            Decode::None => true,
            Decode::Percent => !raw.contains(&b'%'),
            Decode::Form => !raw.iter().any(|&b| b == b'%' || b == b'+'),
        }
    }
}

/// The normalized bytes of a raw byte string, produced lazily.
///
/// An invalid escape (`%` not followed by two hex digits) stands for itself, so every
/// input has a normalization and nothing here can fail.
#[derive(Debug, Clone)]
pub(crate) struct Normalized<'a> {
    bytes: &'a [u8],
    pos: usize,
    norm: Norm,
}

impl<'a> Normalized<'a> {
    pub(crate) const fn new(bytes: &'a [u8], norm: Norm) -> Self {
        Self {
            bytes,
            pos: 0,
            norm,
        }
    }
}

impl Iterator for Normalized<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.pos)?;
        self.pos += 1;
        let byte = match byte {
            b'%' if self.norm.decode != Decode::None => {
                let high = self.bytes.get(self.pos).copied().and_then(hex_value);
                let low = self.bytes.get(self.pos + 1).copied().and_then(hex_value);
                match (high, low) {
                    (Some(high), Some(low)) => {
                        self.pos += 2;
                        (high << 4) | low
                    }
                    _ => b'%',
                }
            }
            b'+' if self.norm.decode == Decode::Form => b' ',
            other => other,
        };
        Some(if self.norm.fold {
            byte.to_ascii_lowercase()
        } else {
            byte
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.bytes.len() - self.pos;
        (left.div_ceil(3), Some(left))
    }
}

const fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Normalizes `raw` into a new buffer (build time, and parameter values).
pub(crate) fn normalize(raw: &[u8], norm: Norm) -> Vec<u8> {
    Normalized::new(raw, norm).collect()
}

/// Appends the decoded `raw` to `out`; invalid UTF-8 becomes U+FFFD instead of failing.
/// Allocates only when `raw` has escapes.
pub(crate) fn decode_into(out: &mut String, raw: &str, norm: Norm) {
    if norm.is_plain(raw.as_bytes()) && !norm.fold {
        out.push_str(raw);
    } else {
        out.push_str(&String::from_utf8_lossy(&normalize(raw.as_bytes(), norm)));
    }
}

/// The position of the first `needle` in `haystack`, eight bytes at a time: request
/// lines are short, so this beats both a byte loop and the set-up of `str::find`.
pub(crate) fn find_byte(haystack: &str, needle: u8) -> Option<usize> {
    let bytes = haystack.as_bytes();
    let pattern = ONES * u64::from(needle);
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = load_word(chunk) ^ pattern;
        // The lowest byte of `word` that is zero (the first match) sets the lowest bit
        // of `zero`; bytes above a zero byte may show false positives, which
        // `trailing_zeros` never reaches.
        let zero = word.wrapping_sub(ONES) & !word & HIGH;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| byte == needle)
        .map(|position| offset + position)
}

/// `haystack` split around its first `needle` (an ASCII byte), if it has one.
pub(crate) fn split_at_byte(haystack: &str, needle: u8) -> Option<(&str, &str)> {
    let position = find_byte(haystack, needle)?;
    // `needle` is ASCII, so both positions are character boundaries.
    Some((haystack.get(..position)?, haystack.get(position + 1..)?))
}

/// Raw request bytes about to be compared with, or hashed like, normalized keys. Works
/// out once whether the bytes need decoding, so probing several keys does not rescan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe<'a> {
    raw: &'a [u8],
    norm: Norm,
    plain: bool,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(raw: &'a [u8], norm: Norm) -> Self {
        Self {
            raw,
            norm,
            plain: norm.is_plain(raw),
        }
    }

    /// Whether the probe normalizes to `key`, which must already be decoded; when the
    /// norm folds, `key` is compared ignoring ASCII case too.
    pub(crate) fn eq(&self, key: &[u8]) -> bool {
        match (self.plain, self.norm.fold) {
            (true, true) => eq_ignore_case(self.raw, key),
            (true, false) => self.raw == key,
            (false, true) => {
                Normalized::new(self.raw, self.norm).eq(key.iter().map(u8::to_ascii_lowercase))
            }
            (false, false) => Normalized::new(self.raw, self.norm).eq(key.iter().copied()),
        }
    }

    /// A hash of the normalized bytes: equal to [`hash_key`] of every key that
    /// [`Probe::eq`] accepts (for folding norms, keys must be stored lowercase).
    pub(crate) fn hash(&self) -> u64 {
        if self.plain {
            hash_words(self.raw, self.norm.fold)
        } else {
            let mut hasher = ByteHasher::default();
            for byte in Normalized::new(self.raw, self.norm) {
                hasher.write(byte);
            }
            hasher.finish()
        }
    }
}

/// Whether `raw` normalizes to `key` (see [`Probe::eq`]).
pub(crate) fn eq_normalized(raw: &[u8], key: &[u8], norm: Norm) -> bool {
    Probe::new(raw, norm).eq(key)
}

/// The hash of a stored (already normalized) key.
pub(crate) fn hash_key(key: &[u8]) -> u64 {
    hash_words(key, false)
}

// The hash reads eight bytes at a time: FxHash's mixing step per little-endian word
// (the last one zero-padded), the length, then murmur3's finalizer so that the low bits
// used for the slot index depend on every input byte. `hash_words` and `ByteHasher`
// compute the same function, one from a slice, one from a stream of decoded bytes.
//
// Not DoS-resistant, and it need not be: the keys come from configuration, and a request
// can only probe, never insert, so it cannot lengthen a probe sequence.

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

const fn mix(hash: u64, word: u64) -> u64 {
    (hash.rotate_left(5) ^ word).wrapping_mul(SEED)
}

const fn finalize(hash: u64, len: u64) -> u64 {
    let mut hash = hash ^ len;
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;

/// Eight bytes as a little-endian word. `chunk` comes from `chunks_exact(8)`; the fixed
/// size makes this one load, where a variable-length copy would call `memcpy`.
fn load_word(chunk: &[u8]) -> u64 {
    <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes)
}

/// Up to eight bytes as a little-endian word, zero-padded.
fn load_tail(tail: &[u8]) -> u64 {
    tail.iter()
        .take(8)
        .enumerate()
        .fold(0, |word, (index, &byte)| {
            word | (u64::from(byte) << (8 * index))
        })
}

/// Lowercases the ASCII letters among eight bytes at once; other bytes are unchanged.
const fn lowercase_word(word: u64) -> u64 {
    let ascii = !word & HIGH;
    let low7 = word & (ONES * 0x7f);
    // Adding without carry between bytes (each sum stays below 0x100): the high bit
    // says "at least `A`" and "above `Z`" respectively.
    let from_a = low7 + ONES * (0x80 - b'A' as u64);
    let above_z = low7 + ONES * (0x7f - b'Z' as u64);
    let upper = ascii & (from_a ^ above_z) & HIGH;
    word | (upper >> 2)
}

/// `a.eq_ignore_ascii_case(b)`, eight bytes at a time.
fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_tail, b_tail) = (a_chunks.remainder(), b_chunks.remainder());
    a_chunks
        .zip(b_chunks)
        .all(|(a, b)| lowercase_word(load_word(a)) == lowercase_word(load_word(b)))
        && a_tail.eq_ignore_ascii_case(b_tail)
}

fn hash_words(bytes: &[u8], fold: bool) -> u64 {
    let mut hash = 0;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = load_word(chunk);
        hash = mix(hash, if fold { lowercase_word(word) } else { word });
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let word = load_tail(tail);
        hash = mix(hash, if fold { lowercase_word(word) } else { word });
    }
    finalize(hash, bytes.len() as u64)
}

/// [`hash_words`], fed one byte at a time.
#[derive(Debug, Default)]
struct ByteHasher {
    hash: u64,
    word: u64,
    filled: u32,
    len: u64,
}

impl ByteHasher {
    fn write(&mut self, byte: u8) {
        self.word |= u64::from(byte) << (8 * self.filled);
        self.filled += 1;
        self.len += 1;
        if self.filled == 8 {
            self.hash = mix(self.hash, self.word);
            self.word = 0;
            self.filled = 0;
        }
    }

    fn finish(self) -> u64 {
        let hash = if self.filled > 0 {
            mix(self.hash, self.word)
        } else {
            self.hash
        };
        finalize(hash, self.len)
    }
}

/// Up to this many keys a [`LiteralMap`] is scanned linearly: comparing a few short
/// keys is cheaper than hashing the probe.
const LINEAR_MAX: usize = 8;

/// Keys up to this long are stored inside their entry, so comparing them touches no
/// other memory.
const INLINE_KEY: usize = 22;

/// An immutable map from normalized byte strings to `V`, probed with raw bytes.
///
/// Small maps are a list; larger ones an open-addressing table (load factor at most one
/// half, linear probing), so a lookup costs one hash of the probe and, typically, one
/// comparison, whatever the number of keys. Entries sit in the table itself and short
/// keys inside their entry: a hit usually reads a single cache line, which is what keeps
/// a table of 10,000 APIs close to the speed of one with 10.
#[derive(Debug, Clone)]
pub(crate) struct LiteralMap<V> {
    /// Linear: the entries, all `Some`. Hashed: the table, a power of two long.
    table: Box<[Option<Entry<V>>]>,
    hashed: bool,
    len: usize,
    /// Keys longer than [`INLINE_KEY`], back to back.
    long_keys: Box<[u8]>,
}

#[derive(Debug, Clone)]
struct Entry<V> {
    hash: u64,
    key: Key,
    value: V,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Long { start: usize, end: usize },
}

impl<V> Default for LiteralMap<V> {
    fn default() -> Self {
        Self {
            table: Box::default(),
            hashed: false,
            len: 0,
            long_keys: Box::default(),
        }
    }
}

impl<V> LiteralMap<V> {
    /// Freezes `map`, whose keys must already be normalized (lowercase for maps probed
    /// with a folding norm).
    pub(crate) fn from_map(map: HashMap<Box<[u8]>, V>) -> Self {
        let mut pairs: Vec<(Box<[u8]>, V)> = map.into_iter().collect();
        // A deterministic layout makes benchmarks and debugging repeatable.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let len = pairs.len();
        let mut long_keys = Vec::new();
        let entries = pairs.into_iter().map(|(key, value)| {
            let stored = if key.len() <= INLINE_KEY {
                let mut bytes = [0; INLINE_KEY];
                bytes[..key.len()].copy_from_slice(&key);
                Key::Inline {
                    len: key.len() as u8,
                    bytes,
                }
            } else {
                let start = long_keys.len();
                long_keys.extend_from_slice(&key);
                Key::Long {
                    start,
                    end: long_keys.len(),
                }
            };
            Entry {
                hash: hash_key(&key),
                key: stored,
                value,
            }
        });
        let hashed = len > LINEAR_MAX;
        let table = if hashed {
            let size = (len * 2).next_power_of_two();
            let mask = size - 1;
            let mut table: Vec<Option<Entry<V>>> = (0..size).map(|_| None).collect();
            for entry in entries {
                // Only the hash's low bits pick the slot; truncating it is intended.
                let mut slot = entry.hash as usize & mask;
                while table[slot].is_some() {
                    slot = (slot + 1) & mask;
                }
                table[slot] = Some(entry);
            }
            table
        } else {
            entries.map(Some).collect()
        };
        Self {
            table: table.into_boxed_slice(),
            hashed,
            len,
            long_keys: long_keys.into_boxed_slice(),
        }
    }

    fn key<'k>(&'k self, key: &'k Key) -> &'k [u8] {
        match key {
            Key::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Key::Long { start, end } => self.long_keys.get(*start..*end).unwrap_or_default(),
        }
    }

    /// The value whose key `raw` normalizes to.
    pub(crate) fn get(&self, raw: &[u8], norm: Norm) -> Option<&V> {
        let probe = Probe::new(raw, norm);
        if !self.hashed {
            return self
                .table
                .iter()
                .flatten()
                .find(|entry| probe.eq(self.key(&entry.key)))
                .map(|entry| &entry.value);
        }
        let hash = probe.hash();
        let mask = self.table.len() - 1;
        let mut slot = hash as usize & mask;
        // The table is at most half full, so this ends at an empty slot.
        loop {
            let entry = self.table.get(slot)?.as_ref()?;
            if entry.hash == hash && probe.eq(self.key(&entry.key)) {
                return Some(&entry.value);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The number of keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
#[path = "text_tests.rs"]
mod tests;
