//! Graph validation (typed errors) and the structural edits passes use: lookup, replace,
//! insert after/before, remove, rewrite by type and kind, take a module out.

use qflow::{FunctionalBuilder, FunctionalOp, Graph, Node, Op, QflowError, SequentialBuilder};
use qnn::float::{Identity, Linear, ReLU};
use qnn::fused::LinearReLU;
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::{Module, ModuleKind, Value};

fn lin(rng: &mut Rng) -> Linear {
    Linear::new(3, 3, true, rng)
}

fn chain() -> Graph {
    let mut rng = Rng::new(0);
    SequentialBuilder::new("x")
        .add("fc1", lin(&mut rng))
        .add("relu1", ReLU::new())
        .add("fc2", lin(&mut rng))
        .build()
        .unwrap()
}

fn x() -> Value {
    Value::F32(Tensor::from_fn(&[2, 3], |i| i as f32 / 3.0 - 1.0))
}

#[test]
fn validation_errors_are_typed() {
    let mut rng = Rng::new(1);
    let dup = SequentialBuilder::new("x")
        .add("a", lin(&mut rng))
        .add("a", ReLU::new())
        .build();
    assert_eq!(
        dup.unwrap_err(),
        QflowError::DuplicateName { name: "a".into() }
    );
    let shadow = SequentialBuilder::new("x").add("x", ReLU::new()).build();
    assert!(matches!(shadow, Err(QflowError::DuplicateName { .. })));

    let unknown = Graph::new(
        vec!["x".into()],
        vec![Node::new("a", Op::module(ReLU::new()), &["nope"])],
        vec!["a".into()],
    );
    assert_eq!(
        unknown.unwrap_err(),
        QflowError::UnknownInput {
            node: "a".into(),
            input: "nope".into()
        }
    );

    let cycle = Graph::new(
        vec!["x".into()],
        vec![
            Node::new("a", FunctionalOp::Add, &["x", "b"]),
            Node::new("b", Op::module(ReLU::new()), &["a"]),
        ],
        vec!["b".into()],
    );
    assert!(matches!(cycle, Err(QflowError::Cycle { nodes }) if nodes == ["a", "b"]));

    let arity = Graph::new(
        vec!["x".into()],
        vec![Node::new("a", FunctionalOp::Add, &["x"])],
        vec!["a".into()],
    );
    assert!(matches!(arity, Err(QflowError::Arity { got: 1, .. })));

    let out = Graph::new(vec!["x".into()], vec![], vec!["y".into()]);
    assert!(matches!(out, Err(QflowError::UnknownOutput { .. })));
    assert!(matches!(
        Graph::new(vec![], vec![], vec![]),
        Err(QflowError::NoInputsOrOutputs)
    ));
    let empty = SequentialBuilder::new("x").add("", ReLU::new()).build();
    assert!(matches!(empty, Err(QflowError::EmptyName)));

    let mut g = chain();
    assert!(matches!(
        g.run(&[]),
        Err(QflowError::InputCount {
            expected: 1,
            got: 0
        })
    ));
    let bad = Value::F32(Tensor::zeros(&[2, 5]));
    assert!(matches!(g.run(&[bad]), Err(QflowError::Node { node, .. }) if node == "fc1"));
    assert!(matches!(
        g.backward_all(&[x()]),
        Err(QflowError::Node { .. })
    ));
}

#[test]
fn nodes_are_kept_in_topological_order() {
    let g = Graph::new(
        vec!["x".into()],
        vec![
            Node::new("b", Op::module(ReLU::new()), &["a"]),
            Node::new("a", Op::module(Identity::new()), &["x"]),
        ],
        vec!["b".into()],
    )
    .unwrap();
    assert_eq!(g.node_names(), ["a", "b"]);
}

#[test]
fn lookup_and_kinds() {
    let g = chain();
    assert_eq!(g.len(), 3);
    assert_eq!(g.inputs(), ["x"]);
    assert_eq!(g.outputs(), ["fc2"]);
    assert_eq!(g.node("relu1").unwrap().kind(), Some(ModuleKind::ReLU));
    assert!(g.node("nope").is_none());
    assert!(matches!(
        g.try_node("nope"),
        Err(QflowError::UnknownNode { .. })
    ));
    let linears: Vec<&str> = g
        .nodes_of_kind(ModuleKind::Linear)
        .map(|n| n.name())
        .collect();
    assert_eq!(linears, ["fc1", "fc2"]);
    assert_eq!(g.consumers("fc1"), ["relu1"]);
    assert!(g.is_output("fc2"));
    assert_eq!(g.module_as::<Linear>("fc1").unwrap().in_features(), 3);
    assert!(g.module_as::<ReLU>("fc1").is_none());
    let text = g.to_string();
    assert!(
        text.contains("\n  fc1: Linear(in_features=3, out_features=3, bias=True)\n"),
        "{text}"
    );
    assert!(text.contains("\n  relu1: ReLU()\n"), "{text}");
    let debug = format!("{g:?}");
    assert!(debug.contains("relu1: ReLU train=1 <- fc1"), "{debug}");
    assert_eq!(g.fresh_name("obs"), "obs");
    assert_eq!(g.fresh_name("fc1"), "fc1_1");
    assert_eq!(g.fresh_name("x"), "x_1");
}

#[test]
fn insert_after_and_before_rewire_readers_and_outputs() {
    let mut g = chain();
    let before = g.run(&[x()]).unwrap();
    g.insert_after("fc2", "obs_out", Op::module(Identity::new()))
        .unwrap();
    g.insert_after("x", "obs_in", Op::module(Identity::new()))
        .unwrap();
    g.insert_before("fc2", "pre_fc2", Op::module(Identity::new()))
        .unwrap();
    assert_eq!(g.outputs(), ["obs_out"]);
    assert_eq!(g.node("fc1").unwrap().inputs(), ["obs_in"]);
    assert_eq!(g.node("fc2").unwrap().inputs(), ["pre_fc2"]);
    assert_eq!(g.node("pre_fc2").unwrap().inputs(), ["relu1"]);
    assert_eq!(
        g.node_names(),
        ["obs_in", "fc1", "relu1", "pre_fc2", "fc2", "obs_out"]
    );
    assert_eq!(g.run(&[x()]).unwrap(), before);

    assert!(matches!(
        g.insert_after("fc1", "relu1", Op::module(Identity::new())),
        Err(QflowError::DuplicateName { .. })
    ));
    assert!(matches!(
        g.insert_after("nope", "n", Op::module(Identity::new())),
        Err(QflowError::UnknownNode { .. })
    ));
    assert!(matches!(
        g.insert_after("fc1", "two", FunctionalOp::Add),
        Err(QflowError::Arity { .. })
    ));

    // Removing the inserted nodes restores the original wiring.
    for n in ["obs_in", "pre_fc2", "obs_out"] {
        let op = g.remove_node(n).unwrap();
        assert_eq!(op.kind(), Some(ModuleKind::Identity));
    }
    assert_eq!(g.outputs(), ["fc2"]);
    assert_eq!(g.node("fc1").unwrap().inputs(), ["x"]);
    assert_eq!(g.run(&[x()]).unwrap(), before);
}

#[test]
fn edits_that_would_break_the_graph_are_refused_and_undone() {
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let a = b.module("a", ReLU::new(), &[&x]);
    let s = b.functional("sum", FunctionalOp::Add, &[&a, &x]);
    b.output(&s);
    let mut g = b.build().unwrap();
    assert!(matches!(
        g.remove_node("sum"),
        Err(QflowError::NotSingleInput { inputs: 2, .. })
    ));
    assert!(matches!(
        g.set_node_inputs("a", &["sum"]),
        Err(QflowError::Cycle { .. })
    ));
    assert_eq!(g.node("a").unwrap().inputs(), ["x"]);
    assert!(matches!(
        g.set_outputs(vec!["zz".into()]),
        Err(QflowError::UnknownOutput { .. })
    ));
    assert_eq!(g.outputs(), ["sum"]);
    assert!(matches!(
        g.add_node(Node::new("late", Op::module(ReLU::new()), &["missing"])),
        Err(QflowError::UnknownInput { .. })
    ));
    assert!(g.node("late").is_none());
    g.add_node(Node::new("late", Op::module(ReLU::new()), &["sum"]))
        .unwrap();
    g.set_outputs(vec!["sum".into(), "late".into()]).unwrap();
    assert_eq!(g.run(&[Value::F32(Tensor::zeros(&[1]))]).unwrap().len(), 2);
    assert!(matches!(
        g.replace_op(
            "sum",
            FunctionalOp::Flatten {
                start_dim: 0,
                end_dim: -1
            }
        ),
        Err(QflowError::Arity { .. })
    ));
    let old = g.replace_op("sum", FunctionalOp::Mul).unwrap();
    assert_eq!(old.as_functional(), Some(&FunctionalOp::Add));
}

#[test]
fn rewrite_by_type_and_kind_and_take() {
    let mut g = chain();
    let want = g.run(&[x()]).unwrap();
    let swapped = g
        .rewrite_modules(|name, l: &Linear| {
            Ok((name == "fc1").then(|| Op::module(LinearReLU::new(l.clone(), ReLU::new()))))
        })
        .unwrap();
    assert_eq!(swapped, ["fc1"]);
    let r = g
        .rewrite_kind(ModuleKind::ReLU, |_, _| {
            Ok(Some(Op::module(Identity::new())))
        })
        .unwrap();
    assert_eq!(r, ["relu1"]);
    assert_eq!(g.run(&[x()]).unwrap(), want);

    let fc2: Linear = g.take_module("fc2").unwrap();
    assert_eq!(g.node("fc2").unwrap().kind(), Some(ModuleKind::Identity));
    assert!(matches!(
        g.take_module::<Linear>("fc1"),
        Err(QflowError::WrongModule { .. })
    ));
    g.replace_op("fc2", Op::module(fc2)).unwrap();
    assert_eq!(g.run(&[x()]).unwrap(), want);
    assert!(matches!(
        g.replace_op("zz", Op::module(ReLU::new())),
        Err(QflowError::UnknownNode { .. })
    ));
    // Parameters of the fused node are named under the node.
    let mut names = Vec::new();
    g.visit_params(&mut |n, _| names.push(n.to_string()));
    assert_eq!(
        names,
        ["fc1.0.weight", "fc1.0.bias", "fc2.weight", "fc2.bias"]
    );
}
