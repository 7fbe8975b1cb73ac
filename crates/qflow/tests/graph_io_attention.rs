//! MultiheadAttention and TransformerEncoderLayer in model files: every hyper-parameter comes
//! back, the weights load under PyTorch's state-dict names, the loaded graph's forward is bit
//! for bit the saved one's (f32 and halved, f16 staying f16), and a crafted file describing a
//! huge layer is refused before it is built.

use qflow::io::{graph_from_bytes, graph_to_bytes};
use qflow::{FunctionalBuilder, Graph, QflowError};
use qnn::float::{MultiheadAttention, TransformerEncoderConfig, TransformerEncoderLayer};
use qnn::init::Rng;
use qnn::qtensor::Tensor;
use qnn::repr::TensorDType;
use qnn::{Module, Value};

/// Self-attention (sequence-first, biased), attention without biases (batch-first), a pre-norm
/// GELU encoder layer (batch-first) and a post-norm ReLU encoder layer, all on `x [4, 3, 8]`.
fn attention_graph() -> Graph {
    let mut rng = Rng::new(11);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let a = MultiheadAttention::new(8, 2, true, false, &mut rng).unwrap();
    let a = b.module("mha", a, &[&x]);
    let nb = MultiheadAttention::new(8, 4, false, true, &mut rng).unwrap();
    let nb = b.module("mha_nobias", nb, &[&x]);
    let pre = TransformerEncoderConfig {
        dim_feedforward: 16,
        dropout: 0.25,
        gelu: true,
        batch_first: true,
        norm_first: true,
        layer_norm_eps: 1e-6,
        ..TransformerEncoderConfig::new(8, 2)
    };
    let pre = b.module(
        "enc_pre",
        TransformerEncoderLayer::new(pre, &mut rng).unwrap(),
        &[&x],
    );
    let post = TransformerEncoderConfig {
        dim_feedforward: 12,
        ..TransformerEncoderConfig::new(8, 4)
    };
    let post = b.module(
        "enc_post",
        TransformerEncoderLayer::new(post, &mut rng).unwrap(),
        &[&pre],
    );
    for o in [&a, &nb, &post] {
        b.output(o);
    }
    let mut g = b.build().unwrap();
    g.eval();
    g
}

fn input() -> Value {
    let mut rng = Rng::new(5);
    Value::F32(Tensor::from_fn(&[4, 3, 8], |_| rng.uniform(-1.0, 1.0)))
}

fn roundtrip(g: &Graph) -> Graph {
    graph_from_bytes(&graph_to_bytes(g).unwrap()).unwrap()
}

#[test]
fn attention_and_encoder_layers_round_trip_bit_for_bit() {
    let mut g = attention_graph();
    let mut back = roundtrip(&g);
    assert_eq!(
        qnn::state_dict::state_dict(&back),
        qnn::state_dict::state_dict(&g)
    );
    let keys: Vec<String> = qnn::state_dict::state_dict(&g).into_keys().collect();
    for k in [
        "mha.in_proj_weight",
        "mha.in_proj_bias",
        "mha.out_proj.weight",
        "mha.out_proj.bias",
        "mha_nobias.in_proj_weight",
        "enc_pre.self_attn.in_proj_weight",
        "enc_pre.linear1.weight",
        "enc_pre.linear2.bias",
        "enc_pre.norm1.weight",
        "enc_post.norm2.bias",
    ] {
        assert!(keys.iter().any(|key| key == k), "{k} not in {keys:?}");
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.starts_with("mha_nobias.in_proj_bias"))
    );
    for name in ["enc_pre", "enc_post"] {
        assert_eq!(
            back.module_as::<TransformerEncoderLayer>(name)
                .unwrap()
                .config(),
            g.module_as::<TransformerEncoderLayer>(name)
                .unwrap()
                .config()
        );
    }
    for name in ["mha", "mha_nobias"] {
        let (a, b) = (
            g.module_as::<MultiheadAttention>(name).unwrap(),
            back.module_as::<MultiheadAttention>(name).unwrap(),
        );
        assert_eq!(
            (a.dims(), a.batch_first(), a.in_proj_bias.is_some()),
            (b.dims(), b.batch_first(), b.in_proj_bias.is_some())
        );
    }
    let x = input();
    let out = g.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(back.run(std::slice::from_ref(&x)).unwrap(), out);
    assert!(
        !back
            .node("enc_post")
            .unwrap()
            .module()
            .unwrap()
            .is_training()
    );

    // Halved: the projections and feed-forward weights are f16 again after loading (the
    // file holds their f16 values), the LayerNorms stay f32.
    g.half().unwrap();
    let bytes = graph_to_bytes(&g).unwrap();
    let mut back = graph_from_bytes(&bytes).unwrap();
    let dict = qnn::state_dict::state_dict(&back);
    assert_eq!(dict, qnn::state_dict::state_dict(&g));
    let dtype = |node: &str, param: &str| {
        back.node(node)
            .unwrap()
            .module()
            .unwrap()
            .param_dtype(param)
    };
    for (node, param) in [
        ("mha", "in_proj_weight"),
        ("mha", "out_proj.weight"),
        ("mha_nobias", "in_proj_weight"),
        ("enc_pre", "self_attn.in_proj_weight"),
        ("enc_post", "self_attn.out_proj.weight"),
        ("enc_post", "linear1.weight"),
        ("enc_pre", "linear2.weight"),
    ] {
        assert_eq!(dtype(node, param), Some(TensorDType::F16), "{node}.{param}");
    }
    assert_ne!(dtype("enc_pre", "norm1.weight"), Some(TensorDType::F16));
    assert_eq!(back.param_bytes(), g.param_bytes());
    let out = g.run(std::slice::from_ref(&x)).unwrap();
    assert_eq!(back.run(&[x]).unwrap(), out);
    // And again: a loaded halved graph saves to the same content.
    assert_eq!(qnn::state_dict::state_dict(&roundtrip(&back)), dict);
}

#[test]
fn bad_attention_descriptions_are_typed_errors() {
    let g = attention_graph();
    let text = qflow::io::describe_graph(&g).unwrap();
    let edit = |node: &str, from: &str, to: &str| {
        let prefix = format!("node {node} ");
        let mut hit = false;
        let t: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with(&prefix) && l.contains(from) {
                    hit = true;
                    l.replacen(from, to, 1)
                } else {
                    l.to_string()
                }
            })
            .collect();
        assert!(hit, "`{from}` not on `{node}`");
        qflow::io::graph_from_description(&t.join("\n"))
    };
    assert!(qflow::io::graph_from_description(&text).is_ok());
    // Sizes no file backs are refused before building, naming the node.
    let huge = format!(" embed_dim={} ", 1u64 << 24);
    for node in ["mha", "enc_post"] {
        let err = edit(node, " embed_dim=8 ", &huge).unwrap_err();
        assert!(
            matches!(&err, QflowError::Format(e) if e.contains(&format!("node `{node}`"))),
            "{err:?}"
        );
    }
    let huge = format!(" dim_feedforward={} ", 1u64 << 24);
    let err = edit("enc_post", " dim_feedforward=12 ", &huge).unwrap_err();
    assert!(matches!(&err, QflowError::Format(e) if e.contains("enc_post")));
    // PyTorch's own checks (heads must divide the width), typed.
    assert!(matches!(
        edit("mha", " num_heads=2 ", " num_heads=3 "),
        Err(QflowError::Module(_))
    ));
    assert!(matches!(
        edit("enc_pre", " activation=gelu ", " activation=tanh "),
        Err(QflowError::Format(e)) if e.contains("activation")
    ));
}
