//! QConfig propagation with PyTorch's `_propagate_qconfig_helper` precedence: a node's name
//! entry beats its kind entry, which beats the QConfig of its parent path, down from global.

use qflow::passes::propagate_qconfig;
use qflow::qconfig::{
    Backend, QConfigMapping, default_dynamic_qconfig, default_qconfig, get_default_qconfig,
};
use qflow::{FunctionalBuilder, FunctionalOp, Graph};
use qnn::float::{Conv2d, Conv2dConfig, Identity, Linear, ReLU};
use qnn::init::Rng;
use qnn::{Module, ModuleKind, Value};

struct Custom;

impl Module for Custom {
    fn kind(&self) -> ModuleKind {
        ModuleKind::Custom
    }
    fn forward(&mut self, input: &Value) -> qnn::Result<Value> {
        Ok(input.clone())
    }
    fn backward(&mut self, g: &Value) -> qnn::Result<Value> {
        Ok(g.clone())
    }
    fn train(&mut self, _: bool) {}
    fn is_training(&self) -> bool {
        false
    }
}

fn model() -> Graph {
    let mut rng = Rng::new(0);
    let mut b = FunctionalBuilder::new();
    let x = b.input("x");
    let c = b.module(
        "layer1.0.conv1",
        Conv2d::new(Conv2dConfig::new(1, 1, 1), &mut rng).unwrap(),
        &[&x],
    );
    let r = b.module("layer1.0.relu", ReLU::new(), &[&c]);
    let c2 = b.module(
        "layer1.1.conv1",
        Conv2d::new(Conv2dConfig::new(1, 1, 1), &mut rng).unwrap(),
        &[&r],
    );
    let a = b.functional("layer1.1.add", FunctionalOp::Add, &[&c2, &r]);
    let f = b.functional(
        "flatten",
        FunctionalOp::Flatten {
            start_dim: 1,
            end_dim: -1,
        },
        &[&a],
    );
    let l = b.module("fc", Linear::new(4, 2, true, &mut rng), &[&f]);
    let i = b.module("head.id", Identity::new(), &[&l]);
    let u = b.module("user", Custom, &[&i]);
    b.output(&u);
    b.build().unwrap()
}

fn qc(g: &Graph, n: &str) -> Option<qflow::qconfig::QConfig> {
    g.node(n).unwrap().qconfig().cloned()
}

#[test]
fn precedence_is_name_then_kind_then_parent() {
    let (global, dynamic, x86) = (
        default_qconfig(),
        default_dynamic_qconfig(),
        get_default_qconfig(Backend::X86),
    );
    let mapping = QConfigMapping::new()
        .set_global(Some(global.clone()))
        .set_name("layer1", Some(x86.clone()))
        .set_name("layer1.1", None)
        .set_kind(ModuleKind::Linear, Some(dynamic.clone()))
        .set_kind(ModuleKind::ReLU, Some(global.clone()))
        .set_name("layer1.1.conv1", Some(dynamic.clone()))
        .set_name("head", None);
    let mut g = model();
    propagate_qconfig(&mut g, &mapping);
    // Parent path `layer1` applies to its children...
    assert_eq!(qc(&g, "layer1.0.conv1"), Some(x86.clone()));
    // ...but a kind entry beats the parent's (PyTorch looks up the type with the parent as
    // the default, then the name).
    assert_eq!(qc(&g, "layer1.0.relu"), Some(global.clone()));
    // A name entry beats everything; `None` on a parent skips the children without entries.
    assert_eq!(qc(&g, "layer1.1.conv1"), Some(dynamic.clone()));
    assert_eq!(qc(&g, "layer1.1.add"), None);
    assert_eq!(qc(&g, "flatten"), Some(global.clone()));
    assert_eq!(qc(&g, "fc"), Some(dynamic.clone()));
    assert_eq!(qc(&g, "head.id"), None);
    // User-defined modules only get a QConfig when named.
    assert_eq!(qc(&g, "user"), None);
    let mapping = mapping
        .set_name("user", Some(x86.clone()))
        .set_functional(None);
    propagate_qconfig(&mut g, &mapping);
    assert_eq!(qc(&g, "user"), Some(x86));
    assert_eq!(qc(&g, "flatten"), None);

    // An empty mapping quantizes nothing; a later propagation overwrites an earlier one.
    propagate_qconfig(&mut g, &QConfigMapping::new());
    assert!(g.nodes().all(|n| n.qconfig().is_none()));
    assert_eq!(
        QConfigMapping::new()
            .set_global(Some(global.clone()))
            .global(),
        Some(&global)
    );
}

#[test]
fn later_entries_replace_earlier_ones() {
    let m = QConfigMapping::new()
        .set_kind(ModuleKind::Linear, None)
        .set_kind(ModuleKind::Linear, Some(default_qconfig()))
        .set_name("fc", Some(default_dynamic_qconfig()))
        .set_name("fc", None);
    assert_eq!(
        m.kind_entry(ModuleKind::Linear),
        Some(Some(&default_qconfig()))
    );
    assert_eq!(m.name_entry("fc"), Some(None));
    assert_eq!(m.name_entry("other"), None);
    assert_eq!(m.resolve("fc", Some(ModuleKind::Linear)), None);
    assert_eq!(
        m.resolve("fc2", Some(ModuleKind::Linear)),
        Some(default_qconfig())
    );
}
