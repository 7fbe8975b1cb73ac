//! `propagate_qconfig`: PyTorch's `propagate_qconfig_` on a graph — every node gets the QConfig
//! its [`QConfigMapping`] resolves to (name entry, then kind entry, then the parent path's).

use qnn::ModuleKind;

use crate::graph::Graph;
use crate::qconfig::QConfigMapping;

/// Sets every node's QConfig ([`crate::Node::qconfig`]) from `mapping`
/// ([`QConfigMapping::resolve`]). User-defined ([`ModuleKind::Custom`]) nodes get one only
/// from an entry naming them; otherwise passes leave them alone.
pub fn propagate_qconfig(graph: &mut Graph, mapping: &QConfigMapping) {
    for node in graph.nodes_mut() {
        let kind = node.kind();
        let qconfig = if kind == Some(ModuleKind::Custom) {
            mapping.name_entry(node.name()).flatten().cloned()
        } else {
            mapping.resolve(node.name(), kind)
        };
        node.set_qconfig(qconfig);
    }
}
