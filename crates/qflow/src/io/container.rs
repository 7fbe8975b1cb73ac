//! The file container: safetensors bytes whose metadata holds the format name and version, the
//! graph description and an integrity record — the tensor data's length and a CRC-32 over the
//! tensor data and every other metadata entry — checked before anything is built.

use std::collections::{BTreeMap, HashMap};

use safetensors::{SafeTensorError, SafeTensors};

use super::size_guard::TensorBytes;
use super::{
    FORMAT_VERSION, describe_graph, file_state, graph_from_description_within, load_file_state,
};
use crate::error::{QflowError, Result};
use crate::graph::Graph;

/// Metadata key of the format name.
pub(super) const KEY_FORMAT: &str = "qstack.format";
/// Metadata key of the format version.
pub(super) const KEY_VERSION: &str = "qstack.format_version";
/// Metadata key of the graph description.
pub(super) const KEY_GRAPH: &str = "qstack.graph";
/// Metadata key of the tensor data length in bytes (version 2 on).
pub(super) const KEY_DATA_LEN: &str = "qstack.data_len";
/// Metadata key of the CRC-32 (8 lowercase hex digits; version 2 on).
pub(super) const KEY_CHECKSUM: &str = "qstack.checksum";
/// The format name.
pub(super) const FORMAT_NAME: &str = "qstack.graph";

fn fmt_err(msg: impl Into<String>) -> QflowError {
    QflowError::Format(msg.into())
}

/// The tensor data section of safetensors `bytes` whose header is `header_len` bytes long.
fn data_section(bytes: &[u8], header_len: usize) -> Result<&[u8]> {
    header_len
        .checked_add(8)
        .and_then(|start| bytes.get(start..))
        .ok_or_else(|| fmt_err("header longer than the file"))
}

/// CRC-32 (IEEE) over the tensor data, then each metadata entry but the checksum itself in key
/// order as `key NUL value NUL`: any changed byte of data or description changes it.
fn checksum(data: &[u8], meta: &HashMap<String, String>) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(data);
    let sorted: BTreeMap<&String, &String> =
        meta.iter().filter(|(k, _)| *k != KEY_CHECKSUM).collect();
    for (k, v) in sorted {
        h.update(k.as_bytes());
        h.update(&[0]);
        h.update(v.as_bytes());
        h.update(&[0]);
    }
    h.finalize()
}

/// The whole graph as safetensors bytes: state dict entries plus the structure, format version
/// and integrity record in metadata.
pub fn graph_to_bytes(graph: &Graph) -> Result<Vec<u8>> {
    let text = describe_graph(graph)?;
    let plain = qnn::state_dict::to_safetensors(&file_state(graph)?)?;
    let (plain_header, _) =
        SafeTensors::read_metadata(&plain).map_err(|e| fmt_err(e.to_string()))?;
    let data = data_section(&plain, plain_header)?;
    let mut metadata = HashMap::from([
        (KEY_FORMAT.to_string(), FORMAT_NAME.to_string()),
        (KEY_VERSION.to_string(), FORMAT_VERSION.to_string()),
        (KEY_GRAPH.to_string(), text),
        (KEY_DATA_LEN.to_string(), data.len().to_string()),
    ]);
    let crc = checksum(data, &metadata);
    metadata.insert(KEY_CHECKSUM.to_string(), format!("{crc:08x}"));
    let st = SafeTensors::deserialize(&plain).map_err(|e| fmt_err(e.to_string()))?;
    let out =
        safetensors::serialize(st.tensors(), Some(metadata)).map_err(|e| fmt_err(e.to_string()))?;
    // The data section is laid out the same way in both serializations; make sure of it, since
    // the checksum was taken over the first.
    let (out_header, _) = SafeTensors::read_metadata(&out).map_err(|e| fmt_err(e.to_string()))?;
    if data_section(&out, out_header)? != data {
        return Err(fmt_err(
            "safetensors reordered the tensor data while saving",
        ));
    }
    Ok(out)
}

/// Checks the version-2 integrity record: data length first (a cut file), then the CRC-32.
fn verify(data: &[u8], meta: &HashMap<String, String>) -> Result<()> {
    let expected_len: u64 = meta
        .get(KEY_DATA_LEN)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| fmt_err(format!("missing or malformed `{KEY_DATA_LEN}`")))?;
    if expected_len != data.len() as u64 {
        return Err(QflowError::Corrupt {
            what: "tensor data length in bytes",
            expected: expected_len.to_string(),
            actual: data.len().to_string(),
        });
    }
    let expected_crc = meta
        .get(KEY_CHECKSUM)
        .filter(|v| v.len() == 8 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .and_then(|v| u32::from_str_radix(v, 16).ok())
        .ok_or_else(|| fmt_err(format!("missing or malformed `{KEY_CHECKSUM}`")))?;
    let actual_crc = checksum(data, meta);
    if expected_crc != actual_crc {
        return Err(QflowError::Corrupt {
            what: "CRC-32 of the tensor data and metadata",
            expected: format!("{expected_crc:08x}"),
            actual: format!("{actual_crc:08x}"),
        });
    }
    Ok(())
}

/// Reads a graph written by [`graph_to_bytes`] (or by format version 1, which has no
/// integrity record): checks the format name and version, the data length and checksum, then
/// rebuilds the layers and loads their tensors strictly (missing, extra or misshapen tensors
/// are errors) and restores the state that is not in tensors (modes, observer statistics).
pub fn graph_from_bytes(bytes: &[u8]) -> Result<Graph> {
    let (header_len, meta) = SafeTensors::read_metadata(bytes).map_err(|e| match e {
        SafeTensorError::MetadataIncompleteBuffer => QflowError::Corrupt {
            what: "file length",
            expected: "the header's tensor data in full".into(),
            actual: format!("{} bytes (truncated or padded)", bytes.len()),
        },
        e => fmt_err(e.to_string()),
    })?;
    let meta = meta
        .metadata()
        .as_ref()
        .ok_or_else(|| fmt_err("no metadata: not a qstack graph file"))?;
    if meta.get(KEY_FORMAT).map(String::as_str) != Some(FORMAT_NAME) {
        return Err(fmt_err(format!("`{KEY_FORMAT}` is not `{FORMAT_NAME}`")));
    }
    let version: u32 = meta
        .get(KEY_VERSION)
        .and_then(|v| v.parse().ok())
        .filter(|&v| v >= 1)
        .ok_or_else(|| fmt_err(format!("missing or malformed `{KEY_VERSION}`")))?;
    if version > FORMAT_VERSION {
        return Err(QflowError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    if version >= 2 {
        verify(data_section(bytes, header_len)?, meta)?;
    }
    let text = meta
        .get(KEY_GRAPH)
        .ok_or_else(|| fmt_err(format!("missing `{KEY_GRAPH}`")))?;
    let mut graph = graph_from_description_within(text, &TensorBytes::of_file(bytes)?)?;
    load_file_state(&mut graph, text, qnn::state_dict::from_safetensors(bytes)?)?;
    Ok(graph)
}
