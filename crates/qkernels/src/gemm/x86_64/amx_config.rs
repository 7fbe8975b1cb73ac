//! The AMX tile configuration shared by the GEMM tiles (`amx.rs`) and the row-run
//! convolution (`conv/row_run_amx.rs`): the 64-byte palette-1 block and the `asm!` lines that
//! load it only when the thread's current configuration differs.

/// A 64-byte tile configuration (palette 1).
#[repr(C, align(64))]
pub(crate) struct TileConfig(pub(crate) [u8; 64]);

impl TileConfig {
    /// Palette 1; tile `t` has `rows[t]` rows of 64 bytes (0: unused).
    pub(crate) fn with_rows(rows: [u8; 8]) -> Self {
        let mut c = [0u8; 64];
        c[0] = 1;
        for (t, &r) in rows.iter().enumerate() {
            if r > 0 {
                c[16 + 2 * t] = 64;
                c[48 + t] = r;
            }
        }
        TileConfig(c)
    }

    /// An all-zero block: the buffer `sttilecfg` stores the current configuration into.
    pub(crate) fn zeroed() -> Self {
        TileConfig([0; 64])
    }
}

/// `asm!` template lines: `sttilecfg` the thread's current configuration into `{cur}` (a
/// writable [`TileConfig`]), compare it with `{cfg}` eight bytes at a time (`{t}`: a scratch
/// register) and `ldtilecfg [{cfg}]` only if they differ (~47 ns, which also zeroes the tiles;
/// the check costs ~5 ns). Uses the local labels `3` and `4`. Inside the same `asm!` block as
/// the tile code, so another AMX user on the thread never leaves a stale shape behind.
macro_rules! load_tile_config_if_changed {
    () => {
        concat!(
            "sttilecfg [{cur}]\n",
            "mov {t}, qword ptr [{cur}]\n",
            "cmp {t}, qword ptr [{cfg}]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 8]\n",
            "cmp {t}, qword ptr [{cfg} + 8]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 16]\n",
            "cmp {t}, qword ptr [{cfg} + 16]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 24]\n",
            "cmp {t}, qword ptr [{cfg} + 24]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 32]\n",
            "cmp {t}, qword ptr [{cfg} + 32]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 40]\n",
            "cmp {t}, qword ptr [{cfg} + 40]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 48]\n",
            "cmp {t}, qword ptr [{cfg} + 48]\n",
            "jne 3f\n",
            "mov {t}, qword ptr [{cur} + 56]\n",
            "cmp {t}, qword ptr [{cfg} + 56]\n",
            "je 4f\n",
            "3:\n",
            "ldtilecfg [{cfg}]\n",
            "4:",
        )
    };
}
pub(crate) use load_tile_config_if_changed;
