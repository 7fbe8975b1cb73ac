//! The size guard of the graph loader: before a node's layer is built (and its placeholder
//! parameters allocated), the sizes its description asks for are bounded by the tensor data the
//! file really holds for that node. A crafted file with a valid checksum but an enormous
//! described size (a Linear with `in=2^40`, a huge `weight_shape`, an LSTM with a huge hidden
//! size) is then a [`QflowError::Format`] error naming the node, never an allocation that
//! aborts the process.
//!
//! The check is generic over the layer kinds: it reads the size arguments every description
//! uses ([`SIZE_KEYS`]) per argument prefix (`conv.`, `bn.`, `wfq.obs.`, …) and estimates the
//! elements a layer built from them holds: the product of the sizes, divided by `groups` for a
//! convolution (`in` and `groups` in the same prefix), and `hidden * (input + 2 * hidden *
//! layers)` for the recurrent layers and cells, `embed_dim * (embed_dim + dim_feedforward)` for
//! attention and encoder layers. That estimate is at most what the layer's
//! state dict holds, so a real file always passes; it must not exceed twice the node's tensor
//! bytes in the file (4-bit rows hold two elements per byte) plus [`SLACK_ELEMENTS`] for layers
//! whose state is not saved (a non-affine norm, a fresh histogram observer). A histogram
//! observer's `bins * upsample` counts too: its next calibration step allocates that much.

use std::collections::{BTreeMap, HashMap};

use crate::error::{QflowError, Result};

/// Argument names (after the last `.` of a prefixed key) whose values are tensor dimensions.
const SIZE_KEYS: [&str; 17] = [
    "in",
    "out",
    "kernel",
    "weight_shape",
    "features",
    "channels",
    "shape",
    "size",
    "num",
    "dim",
    "bins",
    "upsample",
    "input",
    "hidden",
    "layers",
    "embed_dim",
    "dim_feedforward",
];

/// Elements any node may describe beyond what the file holds for it: layers whose sizes are not
/// backed by saved tensors (non-affine norms, fresh observers) stay below this.
pub(super) const SLACK_ELEMENTS: u128 = 1 << 22;

/// Tensor data bytes per tensor name, read from the safetensors header (no data is copied).
#[derive(Default)]
pub(super) struct TensorBytes {
    bytes: BTreeMap<String, u128>,
}

impl TensorBytes {
    /// The tensors of safetensors `file`.
    pub(super) fn of_file(file: &[u8]) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(file)
            .map_err(|e| QflowError::Format(e.to_string()))?;
        let bytes = st
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, view.data().len() as u128))
            .collect();
        Ok(Self { bytes })
    }

    /// Bytes of the tensors named `<node>.…`.
    fn of_node(&self, node: &str) -> u128 {
        let prefix = format!("{node}.");
        self.bytes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, &b)| b)
            .sum()
    }
}

/// The value of a size argument: each comma-separated number multiplied (`1` for zero);
/// non-numeric or negative values are not sizes (`None`), digits too long for any size are
/// absurd (`u128::MAX`).
fn size_value(v: &str) -> Option<u128> {
    let mut product: u128 = 1;
    for part in v.split(',').filter(|p| !p.is_empty()) {
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n = part.parse::<u128>().unwrap_or(u128::MAX).max(1);
        product = product.saturating_mul(n);
    }
    Some(product)
}

/// The elements a layer built from `args` would hold, estimated per argument prefix (the
/// largest prefix group counts).
fn described_elements(args: &HashMap<String, String>) -> u128 {
    let mut groups: BTreeMap<&str, HashMap<&str, u128>> = BTreeMap::new();
    for (k, v) in args {
        let (prefix, key) = k.rsplit_once('.').map_or(("", k.as_str()), |(p, s)| (p, s));
        let size = if SIZE_KEYS.contains(&key) {
            size_value(v)
        } else if key == "groups" {
            v.parse::<u128>().ok().map(|g| g.max(1))
        } else {
            None
        };
        if let Some(s) = size {
            groups.entry(prefix).or_default().insert(key, s);
        }
    }
    groups
        .values()
        .map(|g| {
            let get = |k: &str| g.get(k).copied();
            let mut n: u128 = 1;
            for (k, &v) in g {
                if !matches!(
                    *k,
                    "groups" | "input" | "hidden" | "layers" | "embed_dim" | "dim_feedforward"
                ) {
                    n = n.saturating_mul(v);
                }
            }
            if let Some(e) = get("embed_dim") {
                // Attention: in_proj [3E, E] and out_proj [E, E]; an encoder layer adds
                // linear1 [F, E] and linear2 [E, F].
                let f = get("dim_feedforward").unwrap_or(0);
                n = n.saturating_mul(e).saturating_mul(e.saturating_add(f));
            } else if let Some(h) = get("hidden") {
                // RNN/LSTM/GRU (and cells): weight_ih [gates*h, input] and weight_hh
                // [gates*h, h] in the first layer, [gates*h, dirs*h] and [gates*h, h] after.
                let (i, l) = (get("input").unwrap_or(1), get("layers").unwrap_or(1));
                let per = i.saturating_add(h.saturating_mul(2).saturating_mul(l));
                n = n.saturating_mul(h).saturating_mul(per);
            } else {
                for k in ["input", "layers"] {
                    n = n.saturating_mul(get(k).unwrap_or(1));
                }
                if let (Some(_), Some(g)) = (get("in"), get("groups")) {
                    // A grouped convolution's weight is [out, in / groups, kernel…].
                    n /= g;
                }
            }
            n
        })
        .max()
        .unwrap_or(0)
}

/// Refuses node `node` (op `op`) when its arguments describe more elements than its tensors in
/// the file (`tensors`) can back.
pub(super) fn check_node(
    node: &str,
    op: &str,
    args: &HashMap<String, String>,
    tensors: &TensorBytes,
) -> Result<()> {
    if op.starts_with("functional.") {
        return Ok(());
    }
    let held = tensors.of_node(node);
    let limit = held.saturating_mul(2).saturating_add(SLACK_ELEMENTS);
    let described = described_elements(args);
    if described > limit {
        let described = if described == u128::MAX {
            "more than any allocation can hold".to_string()
        } else {
            described.to_string()
        };
        return Err(QflowError::Format(format!(
            "node `{node}`: the {op} described holds {described} elements, but the file has \
             only {held} bytes of tensor data for it (at most {limit} elements allowed)"
        )));
    }
    Ok(())
}
