//! How many threads a float GEMM may use.

/// Threading of one float GEMM call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Threads {
    /// Run on the calling thread only (the setting every single-thread comparison uses).
    #[default]
    Single,
    /// Split the work over rayon's current pool with at most this many threads; `0` means the
    /// pool's size. Small products still run on one thread; [`super::sgemm`] splits only
    /// products it can cut into bands of rows itself (same bits as one thread).
    Rayon(usize),
}

impl Threads {
    /// The `gemm` crate's parallelism for this setting.
    pub(crate) fn to_crate(self) -> gemm::Parallelism {
        match self {
            Threads::Single => gemm::Parallelism::None,
            Threads::Rayon(0) => gemm::Parallelism::Rayon(rayon::current_num_threads()),
            Threads::Rayon(1) => gemm::Parallelism::None,
            Threads::Rayon(n) => gemm::Parallelism::Rayon(n),
        }
    }
}
