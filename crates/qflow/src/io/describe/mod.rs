//! Layer descriptions for the graph file: each supported op as a name plus `key=value`
//! arguments, and back. One file per family: `float.rs` (float conv / linear / batch-norm
//! layers, parameter-free activations, pools and the fused modules), `float_more.rs` (the other
//! float layers: parameterized activations, softmaxes, norms, ConvTranspose2d, embeddings,
//! recurrent layers and cells), `float_attention.rs` (MultiheadAttention,
//! TransformerEncoderLayer), `quantized.rs`, `quantized_norm.rs`, `quantized_lookup.rs`
//! (static quantized modules: weighted layers and activations, normalizations, embeddings),
//! `dynamic.rs` (dynamic quantized modules), `qat.rs` (QAT layers and fake-quant modules),
//! `observers.rs` (observer nodes and the observer specs the other families share). Arguments
//! give the shapes a layer is built with; the values come from the state dict, and whatever
//! state is not a tensor (modes, observer statistics, toggles, frozen batch norms) is restored
//! by [`restore`] after loading.

mod dynamic;
mod float;
mod float_attention;
mod float_more;
mod observers;
mod qat;
mod qconfig;
mod quantized;
mod quantized_lookup;
mod quantized_norm;

pub(crate) use observers::{observer_state, split_observer_state};
pub(crate) use qconfig::qconfig_args;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use qnn::init::Rng;
use qnn::state_dict::StateEntry;
use qnn::{Module, ModuleKind};

use crate::error::{QflowError, Result};
use crate::graph::{FunctionalOp, Graph, Node, Op};

/// The `key=value` arguments of one node line, in writing order.
pub(super) type Args = Vec<(String, String)>;

pub(super) fn fmt_err(msg: impl Into<String>) -> QflowError {
    QflowError::Format(msg.into())
}

pub(super) fn list<T: ToString>(v: &[T]) -> String {
    v.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

pub(super) fn flag(b: bool) -> String {
    u8::from(b).to_string()
}

pub(super) fn push(args: &mut Args, prefix: &str, key: &str, value: impl ToString) {
    args.push((format!("{prefix}{key}"), value.to_string()));
}

/// What a family's describer answers: `None` when the module is not of its family.
pub(super) type Described = Option<Result<()>>;

/// `(op name, arguments)` of a node; unsupported modules are a `Format` error naming it.
pub(crate) fn describe_op(node: &Node) -> Result<(String, Args)> {
    let mut args = Args::new();
    let m = match node.op() {
        Op::Functional(f) => {
            match f.op() {
                FunctionalOp::AddScalar(v) | FunctionalOp::MulScalar(v) => {
                    args.push(("value".into(), v.to_string()))
                }
                FunctionalOp::Cat { dim } => args.push(("dim".into(), dim.to_string())),
                FunctionalOp::Flatten { start_dim, end_dim } => {
                    args.push(("start".into(), start_dim.to_string()));
                    args.push(("end".into(), end_dim.to_string()));
                }
                FunctionalOp::Reshape(s) => args.push(("shape".into(), list(s))),
                FunctionalOp::GetItem(i) => args.push(("index".into(), i.to_string())),
                _ => {}
            }
            return Ok((format!("functional.{}", f.op().name()), args));
        }
        Op::Module(m) => m.as_ref(),
    };
    let kind = m.kind();
    let described = float::describe(m, &mut args)
        .or_else(|| float_more::describe(m, &mut args))
        .or_else(|| float_attention::describe(m, &mut args))
        .or_else(|| quantized::describe(m, &mut args))
        .or_else(|| quantized_norm::describe(m, &mut args))
        .or_else(|| quantized_lookup::describe(m, &mut args))
        .or_else(|| dynamic::describe(m, &mut args))
        .or_else(|| qat::describe(m, &mut args))
        .or_else(|| observers::describe(m, &mut args));
    let unsupported = || {
        fmt_err(format!(
            "cannot save node `{}`: module kind {kind:?} is not supported by qflow::io yet",
            node.name()
        ))
    };
    match described {
        Some(Ok(())) => {}
        Some(Err(QflowError::Format(reason))) => {
            return Err(fmt_err(format!(
                "cannot save node `{}`: {reason}",
                node.name()
            )));
        }
        Some(Err(e)) => return Err(e),
        None => return Err(unsupported()),
    }
    args.push(("train".into(), flag(m.is_training())));
    Ok((format!("{kind:?}"), args))
}

/// The concrete module behind a [`ModuleKind`], or a `Format` error (a kind whose concrete type
/// is not the one qnn builds, e.g. a custom module reporting a built-in kind).
pub(super) fn concrete<T: Module>(m: &dyn Module) -> Result<&T> {
    m.downcast_ref::<T>().ok_or_else(|| {
        fmt_err(format!(
            "module kind {:?} is not a {}",
            m.kind(),
            std::any::type_name::<T>()
        ))
    })
}

/// Typed access to the `key=value` arguments of one node line.
pub(crate) struct Reader<'a> {
    pub(crate) node: &'a str,
    pub(crate) args: &'a HashMap<String, String>,
}

impl Reader<'_> {
    pub(super) fn raw(&self, key: &str) -> Result<&str> {
        self.args
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| fmt_err(format!("node `{}`: missing argument `{key}`", self.node)))
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.args.contains_key(key)
    }

    pub(super) fn bad(&self, key: &str) -> QflowError {
        let v = self.args.get(key).map_or("", String::as_str);
        fmt_err(format!("node `{}`: bad value `{key}={v}`", self.node))
    }

    pub(super) fn parse<T: FromStr>(&self, key: &str) -> Result<T> {
        self.raw(key)?.parse().map_err(|_| self.bad(key))
    }

    pub(super) fn flag(&self, key: &str) -> Result<bool> {
        match self.raw(key)? {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(self.bad(key)),
        }
    }

    pub(super) fn list<T: FromStr>(&self, key: &str) -> Result<Vec<T>> {
        let v = self.raw(key)?;
        if v.is_empty() {
            return Ok(Vec::new());
        }
        v.split(',')
            .map(|x| x.parse().map_err(|_| self.bad(key)))
            .collect()
    }

    pub(super) fn array<const N: usize>(&self, key: &str) -> Result<[usize; N]> {
        self.list::<usize>(key)?
            .try_into()
            .map_err(|_| fmt_err(format!("node `{}`: `{key}` needs {N} values", self.node)))
    }

    pub(super) fn pair(&self, key: &str) -> Result<[usize; 2]> {
        self.array::<2>(key)
    }

    pub(super) fn optional<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        if self.raw(key)? == "none" {
            Ok(None)
        } else {
            self.parse(key).map(Some)
        }
    }
}

/// What a family's builder answers: `None` when the op name is not of its family.
pub(super) type Built = Option<Result<Box<dyn Module>>>;

/// Builds the op a node line describes, with placeholder values (the state dict fills them).
pub(super) fn build_op(node: &str, op: &str, args: &HashMap<String, String>) -> Result<Op> {
    let r = Reader { node, args };
    let rng = &mut Rng::new(0);
    if let Some(f) = op.strip_prefix("functional.") {
        let fop = match f {
            "add" => FunctionalOp::Add,
            "add_relu" => FunctionalOp::AddRelu,
            "mul" => FunctionalOp::Mul,
            "matmul" => FunctionalOp::Matmul,
            "add_scalar" => FunctionalOp::AddScalar(r.parse("value")?),
            "mul_scalar" => FunctionalOp::MulScalar(r.parse("value")?),
            "cat" => FunctionalOp::Cat {
                dim: r.parse("dim")?,
            },
            "flatten" => FunctionalOp::Flatten {
                start_dim: r.parse("start")?,
                end_dim: r.parse("end")?,
            },
            "reshape" => FunctionalOp::Reshape(r.list("shape")?),
            "getitem" => FunctionalOp::GetItem(r.parse("index")?),
            other => {
                return Err(fmt_err(format!(
                    "node `{node}`: unknown functional op `{other}`"
                )));
            }
        };
        return Ok(Op::functional(fop));
    }
    let built = float::build(op, &r, rng)
        .or_else(|| float_more::build(op, &r, rng))
        .or_else(|| float_attention::build(op, &r, rng))
        .or_else(|| quantized::build(op, &r))
        .or_else(|| quantized_norm::build(op, &r))
        .or_else(|| quantized_lookup::build(op, &r))
        .or_else(|| dynamic::build(op, &r, rng))
        .or_else(|| qat::build(op, &r, rng))
        .or_else(|| observers::build(op, &r));
    match built {
        Some(m) => Ok(Op::Module(m?)),
        None => Err(fmt_err(format!(
            "node `{node}`: unknown module kind `{op}`"
        ))),
    }
}

/// After the state dict is loaded: each module's train/eval mode, `half()` where the saved
/// layer was halved, the observer nodes' statistics and toggles (`observers`: the observer
/// entries split off the file's tensors) and the QAT Conv+BN layers' batch-norm flags.
pub(super) fn restore(
    graph: &mut Graph,
    text: &str,
    observers: &BTreeMap<String, StateEntry>,
) -> Result<()> {
    let mut any_training = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() != Some("node") {
            continue;
        }
        let Some(name) = words.next() else { continue };
        let args: HashMap<String, String> = words
            .skip(2)
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let Some(m) = graph.node_mut(name).and_then(|n| n.module_mut()) else {
            continue;
        };
        let training = args.get("train").map(String::as_str) == Some("1");
        any_training |= training;
        m.train(training);
        if args.iter().any(|(k, v)| k.ends_with("half") && v == "1") {
            m.half()?;
        }
        let r = Reader {
            node: name,
            args: &args,
        };
        if m.kind() == ModuleKind::ObserverModule {
            observers::restore(name, m, &r, observers)?;
        }
        qat::restore(m, &r)?;
    }
    graph.set_training_flag(any_training);
    Ok(())
}
