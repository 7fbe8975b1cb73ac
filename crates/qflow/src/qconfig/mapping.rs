//! [`QConfigMapping`]: which QConfig each node gets — PyTorch's eager `qconfig_dict` with a
//! global entry (`""`), per-module-type entries and per-module-name entries; an entry of `None`
//! leaves the node (and, through the parent rule, its children) unquantized.

use qnn::ModuleKind;

use super::QConfig;

/// Global, per-kind and per-name QConfig entries. Resolution (PyTorch's
/// `_propagate_qconfig_helper`): a node's name entry beats its kind entry, which beats the
/// QConfig inherited from its parent path (`layer1.0` for `layer1.0.conv1`, up to the global
/// entry).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QConfigMapping {
    global: Option<QConfig>,
    by_kind: Vec<(ModuleKind, Option<QConfig>)>,
    functional: Option<Option<QConfig>>,
    by_name: Vec<(String, Option<QConfig>)>,
}

impl QConfigMapping {
    /// An empty mapping: every node resolves to `None` (not quantized).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the global entry (PyTorch's `qconfig_dict[""]`).
    pub fn set_global(mut self, qconfig: Option<QConfig>) -> Self {
        self.global = qconfig;
        self
    }

    /// Sets the entry for every module of `kind` (PyTorch's `qconfig_dict[nn.Linear]`);
    /// `None` skips those modules.
    pub fn set_kind(mut self, kind: ModuleKind, qconfig: Option<QConfig>) -> Self {
        self.by_kind.retain(|(k, _)| *k != kind);
        self.by_kind.push((kind, qconfig));
        self
    }

    /// Sets the entry for every functional node (PyTorch's `qconfig_dict[FloatFunctional]`).
    pub fn set_functional(mut self, qconfig: Option<QConfig>) -> Self {
        self.functional = Some(qconfig);
        self
    }

    /// Sets the entry for the node or parent path `name` (`"fc1"`, `"layer1"`); `None` skips
    /// it (and its children unless they have entries of their own).
    pub fn set_name(mut self, name: &str, qconfig: Option<QConfig>) -> Self {
        self.by_name.retain(|(n, _)| n != name);
        self.by_name.push((name.to_string(), qconfig));
        self
    }

    /// The global entry.
    pub fn global(&self) -> Option<&QConfig> {
        self.global.as_ref()
    }

    /// The entry for `kind`: `None` if there is no entry, `Some(None)` for an explicit skip.
    pub fn kind_entry(&self, kind: ModuleKind) -> Option<Option<&QConfig>> {
        self.by_kind
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, q)| q.as_ref())
    }

    /// The entry for functional nodes, as [`QConfigMapping::kind_entry`].
    pub fn functional_entry(&self) -> Option<Option<&QConfig>> {
        self.functional.as_ref().map(Option::as_ref)
    }

    /// The entry for `name`, as [`QConfigMapping::kind_entry`].
    pub fn name_entry(&self, name: &str) -> Option<Option<&QConfig>> {
        self.by_name
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, q)| q.as_ref())
    }

    /// The QConfig for a node called `name` holding a module of `kind` (`None` for a
    /// functional node): walks the parent paths of `name` from the global entry down, each
    /// level applying its name entry, then the node's kind entry, then its name entry.
    pub fn resolve(&self, name: &str, kind: Option<ModuleKind>) -> Option<QConfig> {
        let mut current = self.global.as_ref();
        let parts: Vec<&str> = name.split('.').collect();
        for depth in 1..parts.len() {
            let prefix = parts[..depth].join(".");
            if let Some(q) = self.name_entry(&prefix) {
                current = q;
            }
        }
        let kind_entry = match kind {
            Some(k) => self.kind_entry(k),
            None => self.functional_entry(),
        };
        if let Some(q) = kind_entry {
            current = q;
        }
        if let Some(q) = self.name_entry(name) {
            current = q;
        }
        current.cloned()
    }
}
