//! Shared by the JOSE targets (`#[path]` module): a counting global allocator, an independent
//! canonical-base64url decoder and an independent duplicate-member check, so the targets check
//! portcullis against code that is not its own.
#![allow(dead_code, reason = "each target uses a part")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Counts the bytes the Rust code holds and the peak since [`peak`] started measuring. A
/// `realloc` counts as the new block allocated before the old one is freed, the worst case.
/// Allocations inside aws-lc (C) are not seen. Every target that includes this module runs on it.
pub struct Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

/// The documented bound on the allocations of a refused JSON document (JWKS, discovery,
/// introspection answer, claims): at most `DOCUMENT_K`·len + `DOCUMENT_C` bytes
/// (docs/security.md).
pub const DOCUMENT_K: usize = 64;
/// See [`DOCUMENT_K`].
pub const DOCUMENT_C: usize = 16384;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Relaxed) + bytes;
    PEAK.fetch_max(now, Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Relaxed);
        }
        p
    }
}

/// Runs `f`; returns what it returned and the most bytes held at once above the level at its
/// start (what it returned included).
pub fn peak<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = CURRENT.load(Relaxed);
    PEAK.store(start, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed).saturating_sub(start))
}

/// Asserts the documented bound on a refusal's memory: at most `k` bytes per input byte plus `c`.
pub fn assert_refusal_bound(what: &str, peak: usize, len: usize, k: usize, c: usize) {
    assert!(
        peak <= k * len + c,
        "{what}: a refusal of a {len}-byte input peaked at {peak} bytes (bound {k}·len + {c})"
    );
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// RFC 7515 §2 base64url, written out independently: the URL-safe alphabet only, no padding, no
/// whitespace, the unused bits of the last character zero. `None` unless `text` is the one
/// encoding of its bytes.
pub fn canonical_b64url(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        let v = ALPHABET.iter().position(|&c| c == b)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// base64url without padding (the encoder every JOSE library agrees on).
pub fn b64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() / 3 * 4 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=n {
            out.push(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Whether a JSON text has an object with a repeated member name at any depth (`Some(true)`),
/// none (`Some(false)`), or is not one JSON value (`None`). Names are compared after unescaping.
pub fn has_duplicates(json: &[u8]) -> Option<bool> {
    serde_json::from_slice::<Dups>(json).ok().map(|d| d.0)
}

struct Dups(bool);

impl<'de> Deserialize<'de> for Dups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DupsVisitor)
    }
}

struct DupsVisitor;

impl<'de> Visitor<'de> for DupsVisitor {
    type Value = Dups;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Dups, E> {
        Ok(Dups(false))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Dups, E> {
        Ok(Dups(false))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Dups, E> {
        Ok(Dups(false))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Dups, E> {
        Ok(Dups(false))
    }
    fn visit_str<E>(self, _: &str) -> Result<Dups, E> {
        Ok(Dups(false))
    }
    fn visit_unit<E>(self) -> Result<Dups, E> {
        Ok(Dups(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Dups, A::Error> {
        let mut any = false;
        while let Some(Dups(d)) = seq.next_element()? {
            any |= d;
        }
        Ok(Dups(any))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dups, A::Error> {
        let mut names = BTreeSet::new();
        let mut any = false;
        while let Some(name) = map.next_key::<String>()? {
            any |= !names.insert(name);
            let Dups(d) = map.next_value()?;
            any |= d;
        }
        Ok(Dups(any))
    }
}
