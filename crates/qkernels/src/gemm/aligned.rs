//! 64-byte aligned scratch: packed A rows and accumulator tiles whose offsets are multiples of
//! 64 bytes start on a cache line (AMX tile loads of unaligned rows run several times slower;
//! vector loads never split lines).

/// One aligned cache line of scratch.
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
pub(crate) struct Line([u8; 64]);

/// An aligned buffer, zero-filled when grown.
#[derive(Default)]
pub(crate) struct AlignedBuf(Vec<Line>);

impl AlignedBuf {
    /// `bytes` zero bytes.
    pub(crate) fn zeroed(bytes: usize) -> Self {
        let mut b = AlignedBuf::default();
        b.grow(bytes);
        b
    }

    /// Grows to at least `bytes` (new bytes zero; existing contents kept).
    pub(crate) fn grow(&mut self, bytes: usize) {
        let lines = bytes.div_ceil(64);
        if self.0.len() < lines {
            self.0.resize(lines, Line([0; 64]));
        }
    }

    /// Allocated bytes.
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.0.capacity() * 64
    }

    /// The first `len` bytes (after [`AlignedBuf::grow`] to at least `len`).
    pub(crate) fn bytes(&mut self, len: usize) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut::<Line, u8>(&mut self.0)[..len]
    }

    /// The first `len` i32 (after [`AlignedBuf::grow`] to at least `4·len` bytes).
    pub(crate) fn i32s(&mut self, len: usize) -> &mut [i32] {
        &mut bytemuck::cast_slice_mut::<Line, i32>(&mut self.0)[..len]
    }
}
