//! Loading a float model from a PyTorch state dict — the safetensors file
//! `safetensors.torch.save_file(model.state_dict(), path)` writes — into a [`Graph`] whose node
//! names are the PyTorch module paths (`features.0`, `layer1.0.conv1`, `fc1`).
//!
//! A graph's state-dict names are `<node>.<name>` (`layer1.0.bn1.running_mean`,
//! `bn.num_batches_tracked`), so a PyTorch key maps onto the node whose name is its longest
//! dotted prefix. Keys of a `torch.nn.DataParallel` model (`module.` in front of every key) are
//! accepted too. Dtypes load as `load_state_dict` copies them: F16/BF16/F64 tensors widen or
//! narrow into f32 parameters, `num_batches_tracked` is a 0-d int64. Errors name the node, the
//! key and both shapes ([`QflowError::TorchStateDict`]).
//!
//! ```
//! use qflow::{load_torch_state_dict, SequentialBuilder};
//! use qnn::float::{Linear, ReLU};
//! use qnn::init::Rng;
//! use qnn::state_dict::{state_dict, to_safetensors};
//!
//! let mut rng = Rng::new(0);
//! let source = SequentialBuilder::new("x")
//!     .add("fc1", Linear::new(4, 3, true, &mut rng))
//!     .add("relu", ReLU::new())
//!     .build()?;
//! let bytes = to_safetensors(&state_dict(&source))?; // what PyTorch would have saved
//! let mut target = SequentialBuilder::new("x")
//!     .add("fc1", Linear::new(4, 3, true, &mut rng))
//!     .add("relu", ReLU::new())
//!     .build()?;
//! let report = load_torch_state_dict(&mut target, &bytes, true)?;
//! assert_eq!(report.loaded, ["fc1.bias", "fc1.weight"]);
//! # Ok::<(), qflow::QflowError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use qnn::QnnError;
use qnn::state_dict::{StateEntry, from_safetensors, load_state_dict, state_dict};

use crate::error::{QflowError, Result};
use crate::graph::Graph;

/// What [`load_torch_state_dict`] did, as PyTorch's `load_state_dict` reports it: the keys
/// loaded, the graph keys the file did not have (kept as they were; only without `strict`),
/// and the file keys the graph does not have (ignored; only without `strict`). Sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TorchLoadReport {
    /// Graph keys written from the file.
    pub loaded: Vec<String>,
    /// Graph keys absent from the file.
    pub missing_keys: Vec<String>,
    /// File keys that match no parameter or buffer of the graph.
    pub unexpected_keys: Vec<String>,
}

/// Loads the safetensors state dict `bytes` into `graph` by PyTorch names.
///
/// With `strict`, every graph parameter and buffer must be in the file and every file key
/// must belong to the graph (PyTorch's `strict=True`); without it, missing keys keep their
/// values and unexpected keys are ignored, but a present key with the wrong shape or dtype is
/// still an error (as in PyTorch). On error the graph may be partially updated. Afterwards
/// every module rebuilds its derived state ([`qnn::Module::after_load`]).
pub fn load_torch_state_dict(
    graph: &mut Graph,
    bytes: &[u8],
    strict: bool,
) -> Result<TorchLoadReport> {
    let dict = from_safetensors(bytes)?;
    load_torch_state_map(graph, &dict, strict)
}

/// [`load_torch_state_dict`] from a file.
pub fn load_torch_state_dict_file(
    graph: &mut Graph,
    path: impl AsRef<Path>,
    strict: bool,
) -> Result<TorchLoadReport> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| {
        QflowError::Module(QnnError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    })?;
    load_torch_state_dict(graph, &bytes, strict)
}

/// [`load_torch_state_dict`] from an already parsed state dict (PyTorch names).
pub fn load_torch_state_map(
    graph: &mut Graph,
    dict: &BTreeMap<String, StateEntry>,
    strict: bool,
) -> Result<TorchLoadReport> {
    let current = state_dict(&*graph);
    let dict = strip_data_parallel(dict, &current);
    let mut report = TorchLoadReport::default();
    let mut merged = BTreeMap::new();
    for (key, value) in &current {
        match dict.get(key) {
            Some(e) => {
                report.loaded.push(key.clone());
                merged.insert(key.clone(), e.clone());
            }
            None if strict => {
                return Err(torch_error(
                    graph,
                    key,
                    QnnError::MissingKey {
                        key: key.clone(),
                        expected: value.shape(),
                    },
                ));
            }
            None => {
                report.missing_keys.push(key.clone());
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, e) in dict.iter() {
        if !current.contains_key(key) {
            if strict {
                return Err(torch_error(
                    graph,
                    key,
                    QnnError::UnexpectedKey {
                        key: key.clone(),
                        shape: e.shape(),
                    },
                ));
            }
            report.unexpected_keys.push(key.clone());
        }
    }
    load_state_dict(graph, &merged, true).map_err(|e| match key_of(&e) {
        Some(key) => {
            let key = key.to_string();
            torch_error(graph, &key, e)
        }
        None => QflowError::Module(e),
    })?;
    Ok(report)
}

/// The file's keys, without a `module.` prefix on every key when the graph's names have none.
fn strip_data_parallel<'a>(
    dict: &'a BTreeMap<String, StateEntry>,
    graph_keys: &BTreeMap<String, StateEntry>,
) -> std::borrow::Cow<'a, BTreeMap<String, StateEntry>> {
    let all_prefixed = !dict.is_empty() && dict.keys().all(|k| k.starts_with("module."));
    let graph_prefixed = graph_keys.keys().any(|k| k.starts_with("module."));
    if all_prefixed && !graph_prefixed {
        std::borrow::Cow::Owned(
            dict.iter()
                .map(|(k, v)| (k["module.".len()..].to_string(), v.clone()))
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(dict)
    }
}

fn key_of(e: &QnnError) -> Option<&str> {
    match e {
        QnnError::MissingKey { key, .. }
        | QnnError::KeyShapeMismatch { key, .. }
        | QnnError::KeyDtypeMismatch { key, .. }
        | QnnError::UnexpectedKey { key, .. } => Some(key),
        _ => None,
    }
}

/// The error for `key`, naming the node it belongs to: the node whose name is the longest
/// dotted prefix of the key.
fn torch_error(graph: &Graph, key: &str, source: QnnError) -> QflowError {
    let names: BTreeSet<&str> = graph.nodes().map(|n| n.name()).collect();
    let node = key
        .char_indices()
        .filter(|(_, c)| *c == '.')
        .map(|(i, _)| &key[..i])
        .rfind(|p| names.contains(p))
        .unwrap_or("?")
        .to_string();
    QflowError::TorchStateDict { node, source }
}
