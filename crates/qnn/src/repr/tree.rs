//! [`ReprTree`]: a module's printed form with its children, rendered either as PyTorch's
//! multi-line `repr(module)` ([`ReprTree::pytorch`]) or as qstack's one-line graph form
//! ([`ReprTree::one_line`], children inlined).

use crate::module::Module;

/// What `repr(module)` is built from: the class name, `extra_repr()` and the named children
/// (PyTorch's `_modules`, in registration order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReprTree {
    /// The class name (`_get_name()`).
    pub type_name: String,
    /// `extra_repr()`; may hold several lines.
    pub extra: String,
    /// `(attribute name, child)` in registration order.
    pub children: Vec<(String, ReprTree)>,
}

impl ReprTree {
    /// A module without children.
    pub fn leaf(type_name: impl Into<String>, extra: impl Into<String>) -> Self {
        Self {
            type_name: type_name.into(),
            extra: extra.into(),
            children: Vec::new(),
        }
    }

    /// The tree of `module`: [`Module::type_name`], [`Module::extra_repr`],
    /// [`Module::repr_children`].
    pub fn of(module: &dyn Module) -> Self {
        Self {
            type_name: module.type_name(),
            extra: module.extra_repr(),
            children: module.repr_children(),
        }
    }

    /// Adds a child named `name`.
    pub fn with_child(mut self, name: impl Into<String>, child: ReprTree) -> Self {
        self.children.push((name.into(), child));
        self
    }

    /// PyTorch's `nn.Module.__repr__`: `Type(extra)` on one line for a leaf with a one-line
    /// `extra_repr`, else the extra lines and `(name): child` lines indented by two spaces.
    pub fn pytorch(&self) -> String {
        let extra_lines: Vec<&str> = if self.extra.is_empty() {
            Vec::new()
        } else {
            self.extra.split('\n').collect()
        };
        let child_lines: Vec<String> = self
            .children
            .iter()
            .map(|(name, child)| format!("({name}): {}", add_indent(&child.pytorch(), 2)))
            .collect();
        let mut s = format!("{}(", self.type_name);
        if extra_lines.len() == 1 && child_lines.is_empty() {
            s += extra_lines[0];
        } else if !extra_lines.is_empty() || !child_lines.is_empty() {
            let lines: Vec<&str> = extra_lines
                .iter()
                .copied()
                .chain(child_lines.iter().map(String::as_str))
                .collect();
            s += "\n  ";
            s += &lines.join("\n  ");
            s += "\n";
        }
        s.push(')');
        s
    }

    /// One line: `Type(extra, child, child, …)`, children in their one-line forms without their
    /// names (the form of a graph node's line).
    pub fn one_line(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.extra.is_empty() {
            parts.push(self.extra.replace('\n', ", "));
        }
        parts.extend(self.children.iter().map(|(_, c)| c.one_line()));
        format!("{}({})", self.type_name, parts.join(", "))
    }
}

/// Python's `_addindent`: every line after the first indented by `n` spaces.
fn add_indent(s: &str, n: usize) -> String {
    let mut lines = s.split('\n');
    let first = lines.next().unwrap_or("");
    let pad = " ".repeat(n);
    let mut out = first.to_string();
    for line in lines {
        out.push('\n');
        out += &pad;
        out += line;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_module_repr() {
        let leaf = ReprTree::leaf("Linear", "in_features=2, out_features=2, bias=True");
        assert_eq!(
            leaf.pytorch(),
            "Linear(in_features=2, out_features=2, bias=True)"
        );
        assert_eq!(ReprTree::leaf("ReLU", "").pytorch(), "ReLU()");
        let tree = ReprTree::leaf("Outer", "a=1").with_child(
            "inner",
            ReprTree::leaf("Inner", "").with_child("x", leaf.clone()),
        );
        assert_eq!(
            tree.pytorch(),
            "Outer(\n  a=1\n  (inner): Inner(\n    (x): Linear(in_features=2, out_features=2, bias=True)\n  )\n)"
        );
        assert_eq!(
            tree.one_line(),
            "Outer(a=1, Inner(Linear(in_features=2, out_features=2, bias=True)))"
        );
    }
}
