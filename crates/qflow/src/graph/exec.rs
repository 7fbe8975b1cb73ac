//! Running a graph: forward in topological order, backward in reverse with gradient
//! accumulation where a value fans out, and the [`qnn::Module`] impl of [`Graph`].

use qnn::qtensor::{Layout, Tensor};
use qnn::{BufferMut, BufferRef, Module, ModuleKind, Param, QnnError, Value};

use super::{Graph, Node, Op, Src};
use crate::error::{QflowError, Result};

/// A per-node observer of [`Graph::run_with`].
type Hook<'a> = dyn FnMut(&Node, &Value) + 'a;

/// What the last forward left for backward: the graph inputs' f32 shapes (for zero gradients).
#[derive(Clone, Debug)]
pub(crate) struct Tape {
    input_shapes: Vec<Option<Vec<usize>>>,
}

fn node_err(node: &str) -> impl FnOnce(QnnError) -> QflowError + '_ {
    move |source| QflowError::Node {
        node: node.to_string(),
        source,
    }
}

fn row_major(t: &Tensor<f32>) -> std::result::Result<Tensor<f32>, QnnError> {
    if t.layout() == Layout::RowMajor {
        Ok(t.clone())
    } else {
        Ok(t.to_row_major()?)
    }
}

/// `a + b` for gradients: f32 tensors of equal shape, or tuples element by element (an empty
/// tuple is "no gradient").
fn add_grads(a: Value, b: Value) -> std::result::Result<Value, QnnError> {
    match (a, b) {
        (Value::Tuple(x), other) if x.is_empty() => Ok(other),
        (other, Value::Tuple(y)) if y.is_empty() => Ok(other),
        (Value::F32(x), Value::F32(y)) => {
            if x.shape() != y.shape() {
                return Err(QnnError::ShapeMismatch {
                    what: "gradients accumulated at a fan-out".into(),
                    expected: x.shape().to_vec(),
                    got: y.shape().to_vec(),
                });
            }
            let (x, y) = (row_major(&x)?, row_major(&y)?);
            let d = x.data().iter().zip(y.data()).map(|(a, b)| a + b).collect();
            Ok(Value::F32(Tensor::new(x.shape(), d)?))
        }
        (Value::Tuple(x), Value::Tuple(y)) if x.len() == y.len() => Ok(Value::Tuple(
            x.into_iter()
                .zip(y)
                .map(|(a, b)| add_grads(a, b))
                .collect::<std::result::Result<_, _>>()?,
        )),
        (a, b) => Err(QnnError::WrongValueKind {
            module: "Graph",
            expected: a.kind_name(),
            got: b.kind_name(),
        }),
    }
}

fn accumulate(slot: &mut Option<Value>, g: Value) -> std::result::Result<(), QnnError> {
    if matches!(&g, Value::Tuple(t) if t.is_empty()) {
        return Ok(());
    }
    *slot = Some(match slot.take() {
        None => g,
        Some(prev) => add_grads(prev, g)?,
    });
    Ok(())
}

impl Graph {
    /// Runs the graph on one value per graph input; returns one value per graph output.
    ///
    /// A module node whose value only the next module node reads (identities in between
    /// skipped) runs fused with it when the pair has a fused kernel
    /// ([`qnn::Module::forward_fused`]: a quantized convolution and a 2×2 max pool); the
    /// outputs are the same.
    pub fn run(&mut self, inputs: &[Value]) -> Result<Vec<Value>> {
        self.execute(inputs, None)
    }

    /// [`Graph::run`], calling `hook` with each node and its output as soon as it is computed
    /// (for calibration, debugging and per-node comparisons); nothing runs fused, so the hook
    /// sees every node's value.
    pub fn run_with(
        &mut self,
        inputs: &[Value],
        hook: &mut dyn FnMut(&Node, &Value),
    ) -> Result<Vec<Value>> {
        self.execute(inputs, Some(hook))
    }

    /// The fused partner of each node (see [`Graph::run`]): `Some(j)` when node `i` is a
    /// module with one input, nodes `i + 1 .. j` are identities each reading only the node
    /// before and read only by the node after, and node `j` is a module reading only node
    /// `j − 1`, whose value nothing else reads (`last_use[i] == Some(i + 1)`, and so on).
    fn fusion_partners(&self, last_use: &[Option<usize>]) -> Vec<Option<usize>> {
        let single_reader = |k: usize| {
            last_use[k] == Some(k + 1) && self.sources[k + 1].as_slice() == [Src::Node(k)]
        };
        (0..self.nodes.len())
            .map(|i| {
                let is_module = |k: usize| matches!(self.nodes[k].op, Op::Module(_));
                if !is_module(i) || self.sources[i].len() != 1 {
                    return None;
                }
                let mut j = i;
                while j + 1 < self.nodes.len() && single_reader(j) && is_module(j + 1) {
                    j += 1;
                    if self.nodes[j].kind() != Some(ModuleKind::Identity) {
                        return Some(j);
                    }
                }
                None
            })
            .collect()
    }

    fn execute(&mut self, inputs: &[Value], mut hook: Option<&mut Hook<'_>>) -> Result<Vec<Value>> {
        if inputs.len() != self.inputs.len() {
            return Err(QflowError::InputCount {
                expected: self.inputs.len(),
                got: inputs.len(),
            });
        }
        self.tape = None;
        let last_use = self.last_uses();
        let partners = match hook {
            Some(_) => vec![None; self.nodes.len()],
            None => self.fusion_partners(&last_use),
        };
        let mut values: Vec<Option<Value>> = Vec::with_capacity(self.nodes.len());
        let mut i = 0;
        while i < self.nodes.len() {
            // sources come earlier in the order: `done` names them, `node` runs now
            let (done, rest) = self.nodes.split_at_mut(i);
            let srcs = &self.sources[i];
            if let Some(j) = partners[i]
                && let (head, tail) = rest.split_at_mut(j - i)
                && let (Op::Module(m), Op::Module(next)) = (&mut head[0].op, &mut tail[0].op)
            {
                let first = &head[0].name;
                let x = match srcs[0] {
                    Src::Input(k) => &inputs[k],
                    Src::Node(k) => values[k].as_ref().ok_or_else(|| QflowError::ValueFreed {
                        node: first.clone(),
                        input: done[k].name.clone(),
                    })?,
                };
                if let Some(out) = m.forward_fused(x, next.as_mut()) {
                    let out = out.map_err(node_err(first))?;
                    if let Src::Node(k) = srcs[0]
                        && last_use[k] == Some(i)
                    {
                        values[k] = None;
                    }
                    // the fused nodes' own values are read by nobody else
                    values.extend((i..j).map(|_| None));
                    values.push(Some(out));
                    i = j + 1;
                    continue;
                }
            }
            let node = &mut rest[0];
            // a node value whose last consumer this is (and no graph output) is handed over
            let owned = match (srcs.as_slice(), &node.op) {
                ([Src::Node(k)], Op::Module(_)) if last_use[*k] == Some(i) => values[*k].take(),
                _ => None,
            };
            let get = |s: &Src| -> Result<&Value> {
                match *s {
                    Src::Input(k) => Ok(&inputs[k]),
                    Src::Node(k) => values[k].as_ref().ok_or_else(|| QflowError::ValueFreed {
                        node: node.name.clone(),
                        input: done[k].name.clone(),
                    }),
                }
            };
            let out = match &mut node.op {
                Op::Module(m) => {
                    if let Some(v) = owned {
                        m.forward_owned(v)
                    } else if srcs.len() == 1 {
                        m.forward(get(&srcs[0])?)
                    } else {
                        let args = srcs.iter().map(|s| get(s).cloned());
                        m.forward(&Value::Tuple(args.collect::<Result<_>>()?))
                    }
                }
                Op::Functional(f) => {
                    let args = srcs.iter().map(|s| get(s).cloned());
                    f.forward(&args.collect::<Result<Vec<_>>>()?)
                }
            }
            .map_err(node_err(&node.name))?;
            if let Some(hook) = hook.as_mut() {
                hook(node, &out);
            }
            // values nobody reads any more are freed now, so their buffers can be reused
            for s in srcs {
                if let Src::Node(k) = *s
                    && last_use[k] == Some(i)
                {
                    values[k] = None;
                }
            }
            values.push(Some(out));
            i += 1;
        }
        let outs = self
            .output_sources
            .iter()
            .map(|s| match *s {
                Src::Input(k) => Ok(inputs[k].clone()),
                // graph outputs are never freed (`last_uses` keeps them)
                Src::Node(k) => values[k].clone().ok_or_else(|| QflowError::ValueFreed {
                    node: "graph output".into(),
                    input: self.nodes[k].name.clone(),
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        self.tape = Some(Tape {
            input_shapes: inputs
                .iter()
                .map(|v| match v {
                    Value::F32(t) => Some(t.shape().to_vec()),
                    _ => None,
                })
                .collect(),
        });
        Ok(outs)
    }

    /// Per node, the last node reading its value, or `None` when no node reads it or a
    /// graph output is it (such values live until the end of the run).
    fn last_uses(&self) -> Vec<Option<usize>> {
        let mut last = vec![None; self.nodes.len()];
        for (i, srcs) in self.sources.iter().enumerate() {
            for s in srcs {
                if let Src::Node(k) = *s {
                    last[k] = Some(i);
                }
            }
        }
        for s in &self.output_sources {
            if let Src::Node(k) = *s {
                last[k] = None;
            }
        }
        last
    }

    /// Backward through the last [`Graph::run`]: takes one gradient per graph output and returns
    /// one per graph input (zeros for an f32 input no output depends on; an empty tuple for
    /// other inputs). Parameter gradients accumulate in the modules.
    pub fn backward_all(&mut self, grads: &[Value]) -> Result<Vec<Value>> {
        let tape = self.tape.clone().ok_or(QflowError::Node {
            node: "<graph>".into(),
            source: QnnError::BackwardBeforeForward { module: "Graph" },
        })?;
        if grads.len() != self.outputs.len() {
            return Err(QflowError::InputCount {
                expected: self.outputs.len(),
                got: grads.len(),
            });
        }
        let mut node_grads: Vec<Option<Value>> = vec![None; self.nodes.len()];
        let mut input_grads: Vec<Option<Value>> = vec![None; self.inputs.len()];
        let add = |src: Src,
                   g: Value,
                   ng: &mut Vec<Option<Value>>,
                   ig: &mut Vec<Option<Value>>|
         -> std::result::Result<(), QnnError> {
            match src {
                Src::Input(k) => accumulate(&mut ig[k], g),
                Src::Node(k) => accumulate(&mut ng[k], g),
            }
        };
        for (src, g) in self.output_sources.iter().zip(grads) {
            add(*src, g.clone(), &mut node_grads, &mut input_grads)
                .map_err(node_err("<outputs>"))?;
        }
        for i in (0..self.nodes.len()).rev() {
            let Some(g) = node_grads[i].take() else {
                continue;
            };
            let node = &mut self.nodes[i];
            let srcs = &self.sources[i];
            let gins: Vec<Option<Value>> = match &mut node.op {
                Op::Module(m) => {
                    let gin = m.backward(&g).map_err(node_err(&node.name))?;
                    if srcs.len() == 1 {
                        vec![Some(gin)]
                    } else {
                        match gin {
                            Value::Tuple(items) if items.len() == srcs.len() => {
                                items.into_iter().map(Some).collect()
                            }
                            Value::Tuple(items) if items.is_empty() => vec![None; srcs.len()],
                            other => {
                                return Err(QflowError::Node {
                                    node: node.name.clone(),
                                    source: QnnError::WrongValueKind {
                                        module: "Graph",
                                        expected: "a tuple with one gradient per input",
                                        got: other.kind_name(),
                                    },
                                });
                            }
                        }
                    }
                }
                Op::Functional(f) => f.backward(&g).map_err(node_err(&node.name))?,
            };
            for (src, gi) in srcs.iter().zip(gins) {
                if let Some(gi) = gi {
                    add(*src, gi, &mut node_grads, &mut input_grads)
                        .map_err(node_err(&self.nodes[i].name))?;
                }
            }
        }
        Ok(input_grads
            .into_iter()
            .zip(&tape.input_shapes)
            .map(|(g, shape)| match (g, shape) {
                (Some(g), _) => g,
                (None, Some(s)) => Value::F32(Tensor::zeros(s)),
                (None, None) => Value::no_grad(),
            })
            .collect())
    }
}

/// A [`QflowError`] as the [`QnnError`] the `Module` trait returns: a node's own error as is,
/// anything else as `InvalidConfig` naming the graph.
fn to_qnn(e: QflowError) -> QnnError {
    match e {
        QflowError::Node { source, .. } | QflowError::Module(source) => source,
        other => QnnError::InvalidConfig {
            module: "Graph",
            reason: other.to_string(),
        },
    }
}

/// A graph is a module: one input value (a tuple for several graph inputs), one output value (a
/// tuple for several outputs), parameters named `<node>.<param>` — so SGD/Adam, `state_dict` and
/// safetensors files work on graphs unchanged. Its kind is [`ModuleKind::Custom`]: a graph
/// nested as a node is left alone by the passes.
impl Module for Graph {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }

    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        let outs = if self.inputs.len() == 1 {
            self.run(std::slice::from_ref(input))
        } else {
            match input {
                Value::Tuple(items) => self.run(items),
                other => self.run(std::slice::from_ref(other)),
            }
        }
        .map_err(to_qnn)?;
        Ok(single_or_tuple(outs))
    }

    fn backward(&mut self, grad_output: &Value) -> qnn::Result<Value> {
        let gins = if self.outputs.len() == 1 {
            self.backward_all(std::slice::from_ref(grad_output))
        } else {
            match grad_output {
                Value::Tuple(items) => self.backward_all(items),
                other => self.backward_all(std::slice::from_ref(other)),
            }
        }
        .map_err(to_qnn)?;
        Ok(single_or_tuple(gins))
    }

    fn visit_params(&self, f: &mut dyn FnMut(&str, &Param)) {
        for n in &self.nodes {
            if let Some(m) = n.module() {
                m.visit_params(&mut |p, v| f(&format!("{}.{p}", n.name), v));
            }
        }
    }

    fn visit_params_mut(&mut self, f: &mut dyn FnMut(&str, &mut Param)) {
        for n in &mut self.nodes {
            let name = &n.name;
            if let Op::Module(m) = &mut n.op {
                m.visit_params_mut(&mut |p, v| f(&format!("{name}.{p}"), v));
            }
        }
    }

    fn visit_buffers(&self, f: &mut dyn FnMut(&str, BufferRef<'_>)) {
        for n in &self.nodes {
            if let Some(m) = n.module() {
                m.visit_buffers(&mut |p, v| f(&format!("{}.{p}", n.name), v));
            }
        }
    }

    fn visit_buffers_mut(&mut self, f: &mut dyn FnMut(&str, BufferMut<'_>)) {
        for n in &mut self.nodes {
            let name = &n.name;
            if let Op::Module(m) = &mut n.op {
                m.visit_buffers_mut(&mut |p, v| f(&format!("{name}.{p}"), v));
            }
        }
    }

    fn train(&mut self, mode: bool) {
        self.training = mode;
        for n in &mut self.nodes {
            if let Op::Module(m) = &mut n.op {
                m.train(mode);
            }
        }
    }

    fn is_training(&self) -> bool {
        self.training
    }

    fn half(&mut self) -> qnn::Result<()> {
        self.tape = None;
        for n in &mut self.nodes {
            if let Op::Module(m) = &mut n.op {
                m.half()?;
            }
        }
        Ok(())
    }

    /// Forwards to every module node (quantized modules repack after a state dict is loaded
    /// into the graph).
    fn after_load(&mut self) -> qnn::Result<()> {
        self.tape = None;
        for n in &mut self.nodes {
            if let Op::Module(m) = &mut n.op {
                m.after_load()?;
            }
        }
        Ok(())
    }

    /// Asks the node named by the key's longest dotted prefix (node names may contain dots).
    fn param_dtype(&self, name: &str) -> Option<qnn::repr::TensorDType> {
        name.char_indices()
            .filter(|(_, c)| *c == '.')
            .filter_map(|(i, _)| {
                let m = self.node(&name[..i])?.module()?;
                m.param_dtype(&name[i + 1..])
            })
            .next()
    }

    fn param_bytes(&self) -> usize {
        self.nodes
            .iter()
            .filter_map(|n| n.module())
            .map(|m| m.param_bytes())
            .sum()
    }
}

fn single_or_tuple(mut v: Vec<Value>) -> Value {
    if v.len() == 1 {
        v.pop().unwrap_or_else(Value::no_grad)
    } else {
        Value::Tuple(v)
    }
}
