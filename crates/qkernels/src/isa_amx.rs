//! Intel AMX detection for `Isa::Amx` (x86-64 only): the CPU reports AMX-TILE and AMX-INT8
//! (CPUID leaf 7, EDX bits 24 and 25), the OS enabled the tile state in XCR0 (bits 17
//! TILECFG and 18 TILEDATA), and the OS granted this process the tile data: Linux keeps AMX
//! off per process until `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` succeeds.
//! The permission is process-wide and is requested once, by the first detection; the answer
//! is cached. Other operating systems have no permission protocol implemented here, so AMX
//! is not used on them.

use std::sync::OnceLock;

/// Whether this process may execute AMX-TILE/AMX-INT8 instructions (checked once, cached;
/// the first call requests the Linux permission).
pub(crate) fn usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| cpu_has_amx_int8() && os_enables_tiles() && request_permission())
}

/// CPUID.(EAX=7,ECX=0):EDX bit 24 (AMX-TILE) and bit 25 (AMX-INT8).
fn cpu_has_amx_int8() -> bool {
    use std::arch::x86_64::{__cpuid, __cpuid_count};
    if __cpuid(0).eax < 7 {
        return false;
    }
    let edx = __cpuid_count(7, 0).edx;
    (edx >> 24) & 1 == 1 && (edx >> 25) & 1 == 1
}

/// XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA): the OS saves and restores the tile state.
fn os_enables_tiles() -> bool {
    #[target_feature(enable = "xsave")]
    fn xcr0() -> u64 {
        // SAFETY: `xgetbv` with ECX = 0 is valid whenever XSAVE is enabled by the OS, which
        // the caller checked (the `xsave` feature is only reported with OSXSAVE set).
        unsafe { std::arch::x86_64::_xgetbv(0) }
    }
    if !std::arch::is_x86_feature_detected!("xsave") {
        return false;
    }
    // SAFETY: the `xsave` feature was detected just above.
    let xcr0 = unsafe { xcr0() };
    xcr0 & (0b11 << 17) == 0b11 << 17
}

/// Linux: asks for the tile data permission (`ARCH_REQ_XCOMP_PERM` = 0x1023 with
/// `XFEATURE_XTILEDATA` = 18); `true` if granted (also when already granted).
#[cfg(target_os = "linux")]
fn request_permission() -> bool {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: `arch_prctl` with these two integer arguments reads and writes no user memory;
    // it only changes the process's permitted xstate features (or fails with an errno).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    ret == 0
}

/// Other systems: no permission protocol implemented, so AMX stays unused.
#[cfg(not(target_os = "linux"))]
fn request_permission() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn detection_is_stable_and_needs_the_cpu_bits() {
        let first = super::usable();
        assert_eq!(super::usable(), first);
        if first {
            assert!(super::cpu_has_amx_int8() && super::os_enables_tiles());
        }
    }
}
