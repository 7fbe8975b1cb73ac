//! PyTorch goldens generated on an x86 CPU **without VNNI** (AMD Zen 2, torch 2.15.0, fbgemm;
//! `tools/golden/gen_conv_avx2.py`): there fbgemm's im2col convolutions add the u8·s8
//! products of each pair of reduction indices with int16 saturation (`vpmaddubsw`), so with
//! full-range activations these files differ from the exact (VNNI) results. The oracle's
//! [`Accumulation::PairSaturating16`] and the [`KernelKind::Avx2Saturating`] family must
//! reproduce them bit for bit: tiny input channels, dense, grouped, 1×1, depthwise on and off
//! fbgemm's fast path, conv1d/2d/3d.

mod common;

use common::{Case, parse, yes};

use qkernels::conv::{self, ConvGeometry, PackedConvWeights, reference};
use qkernels::gemm::reference::Accumulation;
use qkernels::gemm::{Activation, KernelKind, Requantize, WeightQParams};

/// A decoded case and what its output must be.
struct ConvCase {
    name: String,
    geometry: ConvGeometry,
    w: Vec<i8>,
    scales: Vec<f32>,
    zps: Vec<i32>,
    per_channel: bool,
    bias: Option<Vec<f32>>,
    requant: (f32, f32, i32, Activation),
    x: Vec<u8>,
    za: i32,
    want: Vec<u8>,
}

impl ConvCase {
    fn of(c: &Case) -> Self {
        let g: Vec<usize> = c.i64s("geom").iter().map(|&v| v as usize).collect();
        ConvCase {
            name: c.name.clone(),
            geometry: ConvGeometry {
                batch: g[0],
                in_channels: g[1],
                out_channels: g[2],
                groups: g[3],
                input: [g[4], g[5], g[6]],
                kernel: [g[7], g[8], g[9]],
                stride: [g[10], g[11], g[12]],
                padding: [g[13], g[14], g[15]],
                dilation: [g[16], g[17], g[18]],
            },
            w: c.u8s("w").iter().map(|&b| b as i8).collect(),
            scales: c.f64s("w_scales").iter().map(|&s| s as f32).collect(),
            zps: c.i64s("w_zps").iter().map(|&z| z as i32).collect(),
            per_channel: yes(c, "per_channel"),
            bias: yes(c, "has_bias").then(|| c.f32s("bias").to_vec()),
            requant: (
                c.f64s("x_scale")[0] as f32,
                c.f64s("out_scale")[0] as f32,
                c.i64s("out_zp")[0] as i32,
                if yes(c, "relu") {
                    Activation::Relu
                } else {
                    Activation::None
                },
            ),
            x: c.u8s("x_q").to_vec(),
            za: c.i64s("x_zp")[0] as i32,
            want: c.u8s("y").to_vec(),
        }
    }

    fn qparams(&self) -> WeightQParams<'_> {
        WeightQParams::from_slices(self.per_channel, &self.scales, &self.zps)
            .expect("weight qparams")
    }

    fn params(&self) -> Requantize<'_> {
        let (act_scale, out_scale, out_zero_point, activation) = self.requant;
        Requantize {
            act_scale,
            out_scale,
            out_zero_point,
            bias: self.bias.as_deref(),
            activation,
        }
    }

    fn oracle(&self, accumulation: Accumulation) -> Vec<u8> {
        let g = &self.geometry;
        let (x, w, q, p) = (&self.x, &self.w, self.qparams(), self.params());
        reference::conv_u8s8_with(g, x, self.za, w, q, p, accumulation).expect("oracle")
    }

    fn kernel(&self, kind: KernelKind) -> Vec<u8> {
        let packed =
            PackedConvWeights::pack(&self.w, &self.geometry, self.qparams(), kind).expect("pack");
        let mut got = vec![0u8; self.want.len()];
        conv::conv_u8s8(
            &self.geometry,
            &self.x,
            self.za,
            &packed,
            self.params(),
            &mut got,
        )
        .expect("conv");
        got
    }
}

fn cases() -> Vec<ConvCase> {
    let files = [
        (include_str!("data/conv_avx2/conv2d_avx2.golden"), 27),
        (include_str!("data/conv_avx2/conv1d_avx2.golden"), 6),
        (include_str!("data/conv_avx2/conv3d_avx2.golden"), 6),
    ];
    let mut all = Vec::new();
    for (text, n) in files {
        let cases = parse(text);
        assert_eq!(cases.len(), n);
        all.extend(cases.iter().map(ConvCase::of));
    }
    all
}

fn mismatches(got: &[u8], want: &[u8]) -> usize {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).filter(|(a, b)| a != b).count()
}

#[test]
fn pair_saturating_oracle_matches_fbgemm_without_vnni() {
    for c in cases() {
        let bad = mismatches(&c.oracle(Accumulation::PairSaturating16), &c.want);
        assert_eq!(bad, 0, "case {}: {bad} of {} differ", c.name, c.want.len());
    }
}

#[test]
fn saturating_avx2_family_matches_fbgemm_without_vnni() {
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

/// The files must really exercise saturation: exact sums (every other family, and fbgemm
/// with VNNI) differ from them on most cases, and the exact families agree with the exact
/// oracle there.
#[test]
fn the_goldens_really_saturate() {
    let cases = cases();
    let differing: Vec<&ConvCase> = cases
        .iter()
        .filter(|c| mismatches(&c.oracle(Accumulation::Exact), &c.want) > 0)
        .collect();
    assert!(
        differing.len() * 2 >= cases.len(),
        "only {} of {} cases differ from exact sums",
        differing.len(),
        cases.len()
    );
    for kind in KernelKind::all_runnable()
        .into_iter()
        .filter(|k| !k.saturates_pairs())
    {
        for c in &differing {
            assert_eq!(
                c.kernel(kind),
                c.oracle(Accumulation::Exact),
                "{kind}: {}",
                c.name
            );
        }
    }
}
