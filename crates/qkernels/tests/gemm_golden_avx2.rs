//! PyTorch goldens generated on an x86 CPU **without VNNI** (AMD Zen 2, torch 2.15.0, fbgemm;
//! `tools/golden/gen_linear_avx2.py`): there fbgemm adds the u8·s8 products of each depth pair
//! with int16 saturation (`vpmaddubsw`). Full-range activations make many pairs saturate, so
//! these files differ from the exact (VNNI) results, and they pin what
//! [`KernelKind::Avx2Saturating`] and the oracle's [`Accumulation::PairSaturating16`] claim to
//! reproduce: fbgemm on such a CPU, bit for bit.

mod common;

use common::{Case, parse, yes};

use qkernels::gemm::reference::{self, Accumulation};
use qkernels::gemm::{
    self, Activation, Activations, KernelKind, Output, PackedWeights, Requantize, WeightQParams,
};

const GOLDEN: &str = include_str!("data/linear_avx2/linear_static_avx2.golden");

/// A golden case, decoded.
struct Linear {
    name: String,
    m: usize,
    k: usize,
    n: usize,
    w: Vec<i8>,
    scales: Vec<f32>,
    zps: Vec<i32>,
    per_channel: bool,
    bias: Option<Vec<f32>>,
    x: Vec<u8>,
    x_zp: i32,
    params: (f32, f32, i32, Activation),
    want: Vec<u8>,
}

impl Linear {
    fn of(c: &Case) -> Self {
        let s = c.i64s("shape");
        Linear {
            name: c.name.clone(),
            m: s[0] as usize,
            k: s[1] as usize,
            n: s[2] as usize,
            w: c.u8s("w").iter().map(|&b| b as i8).collect(),
            scales: c.f64s("w_scales").iter().map(|&v| v as f32).collect(),
            zps: c.i64s("w_zps").iter().map(|&z| z as i32).collect(),
            per_channel: yes(c, "per_channel"),
            bias: yes(c, "has_bias").then(|| c.f32s("bias").to_vec()),
            x: c.u8s("x_q").to_vec(),
            x_zp: c.i64s("x_zp")[0] as i32,
            params: (
                c.f64s("x_scale")[0] as f32,
                c.f64s("out_scale")[0] as f32,
                c.i64s("out_zp")[0] as i32,
                if yes(c, "relu") {
                    Activation::Relu
                } else {
                    Activation::None
                },
            ),
            want: c.u8s("y").to_vec(),
        }
    }

    fn qparams(&self) -> WeightQParams<'_> {
        WeightQParams::from_slices(self.per_channel, &self.scales, &self.zps)
            .expect("weight qparams")
    }

    fn requantize(&self) -> Requantize<'_> {
        let (act_scale, out_scale, out_zero_point, activation) = self.params;
        Requantize {
            act_scale,
            out_scale,
            out_zero_point,
            bias: self.bias.as_deref(),
            activation,
        }
    }

    /// The scalar oracle's output under `accumulation`.
    fn oracle(&self, accumulation: Accumulation) -> Vec<u8> {
        let mut y = vec![0u8; self.m * self.n];
        reference::gemm_u8s8(
            &self.x,
            self.m,
            self.k,
            self.x_zp,
            &self.w,
            self.n,
            self.k,
            self.qparams(),
            accumulation,
            Output::QUInt8 {
                params: self.requantize(),
                out: &mut y,
                ldc: self.n,
            },
        )
        .expect("oracle");
        y
    }

    /// A kernel family's output through the public entry point.
    fn kernel(&self, kind: KernelKind) -> Vec<u8> {
        let packed =
            PackedWeights::pack(&self.w, self.n, self.k, self.qparams(), kind).expect("pack");
        let mut y = vec![0u8; self.m * self.n];
        gemm::gemm_u8s8(
            Activations {
                data: &self.x,
                rows: self.m,
                row_stride: self.k,
                zero_point: self.x_zp,
            },
            &packed,
            Output::QUInt8 {
                params: self.requantize(),
                out: &mut y,
                ldc: self.n,
            },
        )
        .expect("gemm");
        y
    }
}

fn cases() -> Vec<Linear> {
    let cases: Vec<Linear> = parse(GOLDEN).iter().map(Linear::of).collect();
    assert_eq!(cases.len(), 18);
    cases
}

fn mismatches(got: &[u8], want: &[u8]) -> usize {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).filter(|(a, b)| a != b).count()
}

#[test]
fn pair_saturating_oracle_matches_fbgemm_without_vnni() {
    for c in cases() {
        let bad = mismatches(&c.oracle(Accumulation::PairSaturating16), &c.want);
        assert_eq!(
            bad,
            0,
            "case {}: {bad} of {} outputs differ",
            c.name,
            c.want.len()
        );
    }
}

#[test]
fn saturating_avx2_kernel_matches_fbgemm_without_vnni() {
    let kind = KernelKind::Avx2Saturating;
    if !kind.is_runnable() {
        eprintln!("skipped: {kind} cannot run on this CPU (the oracle test covers the numerics)");
        return;
    }
    for c in cases() {
        let bad = mismatches(&c.kernel(kind), &c.want);
        assert_eq!(bad, 0, "{kind}: case {}: {bad} outputs differ", c.name);
    }
}

/// The goldens must really exercise saturation, or the two tests above prove nothing: exact
/// sums (what every other family and fbgemm on VNNI CPUs compute) differ on most cases.
#[test]
fn the_goldens_really_saturate() {
    let cases = cases();
    let differing = cases
        .iter()
        .filter(|c| mismatches(&c.oracle(Accumulation::Exact), &c.want) > 0)
        .count();
    assert!(
        differing >= cases.len() / 2,
        "only {differing} of {} cases differ from exact sums",
        cases.len()
    );
    for kind in KernelKind::all_runnable()
        .into_iter()
        .filter(|k| !k.saturates_pairs())
    {
        let c = cases.iter().max_by_key(|c| c.m * c.k * c.n).expect("cases");
        assert_eq!(c.kernel(kind), c.oracle(Accumulation::Exact), "{kind}");
        assert_ne!(
            c.kernel(kind),
            c.want,
            "{kind}: exact sums equal the saturated ones"
        );
    }
}
