//! Transparent huge pages for large fresh outputs.
//!
//! A fresh multi-megabyte output (a 16M-element dequantize writes 64 MiB) is mapped by the
//! allocator and then faulted in 4 KiB page by page on its first write: on Linux that costs more
//! than the conversion itself (≈ 16,000 faults, each zeroing a page). Advising the 2 MiB-aligned
//! part of the fresh buffer `MADV_HUGEPAGE` before the kernel writes it lets the first touch of
//! each 2 MiB take one huge page instead (the machines' default THP mode is `madvise`). Only the
//! page mapping changes: the values written are the same, and where the advice is refused (no
//! THP, other OS) the buffer simply stays on small pages.

/// Buffers smaller than this are left alone: they are usually reused heap memory (no faults),
/// and fewer than four huge pages would fit.
pub const HUGE_PAGE_MIN_BYTES: usize = 8 << 20;

/// The huge-page size the advice is aligned to (x86-64 and aarch64 with 4 KiB pages).
const HUGE_PAGE: usize = 2 << 20;

/// Advises the 2 MiB-aligned part of `buf`'s spare capacity for huge pages when it is at least
/// [`HUGE_PAGE_MIN_BYTES`]. Best effort: errors are ignored.
pub(crate) fn advise_spare<T>(buf: &mut Vec<T>) {
    let bytes = buf.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    let start = buf.as_mut_ptr() as usize;
    let first = start.div_ceil(HUGE_PAGE) * HUGE_PAGE;
    let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > first {
        advise(first, end - first);
    }
}

/// Whether the first `bytes` of `buf`'s spare capacity are already backed by memory, judged
/// by their first, middle and last pages: a fresh output the allocator hands back from its
/// own free memory (glibc reuses a freed 16 MiB block from its heap) rather than from a new
/// mapping. Such an output takes streaming stores like a caller's reused buffer; a new mapping
/// does not (streaming into not-yet-faulted pages measured slower). `false` where it cannot
/// tell (other OS, Miri, an error).
pub(crate) fn spare_is_resident<T>(buf: &Vec<T>, bytes: usize) -> bool {
    let start = buf.as_ptr() as usize;
    let end = start.saturating_add(bytes.min(buf.capacity() * std::mem::size_of::<T>()));
    if end <= start {
        return false;
    }
    [start, start + (end - start) / 2, end - 1]
        .into_iter()
        .all(|addr| page_resident(addr & !(PAGE - 1)))
}

/// The smallest page size this module assumes (x86-64 and aarch64 Linux).
const PAGE: usize = 4096;

#[cfg(all(target_os = "linux", not(miri)))]
fn page_resident(page: usize) -> bool {
    let mut state = 0u8;
    // SAFETY: `page` is page-aligned and lies inside the allocation the caller's `Vec` owns;
    // `mincore` only reads the mapping's residency and writes one byte (one page) into
    // `state`, which is valid for that write.
    let rc = unsafe { libc::mincore(page as *mut libc::c_void, PAGE, &mut state) };
    rc == 0 && state & 1 == 1
}

#[cfg(any(not(target_os = "linux"), miri))]
fn page_resident(_page: usize) -> bool {
    false
}

#[cfg(all(target_os = "linux", not(miri)))]
fn advise(addr: usize, len: usize) {
    // SAFETY: [addr, addr + len) lies inside the allocation the caller's `Vec` owns (its
    // capacity, rounded inwards to 2 MiB); `madvise(MADV_HUGEPAGE)` only changes how the kernel
    // backs those pages, never their contents or the mapping's validity, and its failure (e.g.
    // THP disabled) is harmless, so the result is ignored.
    unsafe {
        libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(any(not(target_os = "linux"), miri))]
fn advise(_addr: usize, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn residency_follows_the_first_touch() {
        // Above glibc's largest mmap threshold (32 MiB): always a new mapping, not yet backed.
        let bytes = 40 << 20;
        let mut fresh: Vec<u8> = Vec::with_capacity(bytes);
        let before = spare_is_resident(&fresh, bytes);
        fresh.resize(bytes, 1);
        fresh.clear();
        let after = spare_is_resident(&fresh, bytes);
        if cfg!(all(target_os = "linux", not(miri))) {
            assert!(!before, "a fresh mapping reported resident");
            assert!(after, "written pages reported not resident");
        } else {
            assert!(!before && !after);
        }
        let empty: Vec<u8> = Vec::new();
        assert!(!spare_is_resident(&empty, 0));
    }

    #[test]
    fn advised_buffers_keep_what_is_written() {
        let n = HUGE_PAGE_MIN_BYTES / 4 + 4 * HUGE_PAGE / 4 + 3;
        let mut v: Vec<u32> = Vec::with_capacity(n);
        advise_spare(&mut v);
        v.extend((0..n as u32).map(|i| i.wrapping_mul(2_654_435_761)));
        assert!(
            v.iter()
                .enumerate()
                .all(|(i, &x)| x == (i as u32).wrapping_mul(2_654_435_761))
        );
    }
}
