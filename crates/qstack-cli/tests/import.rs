//! A LeNet5 trained in PyTorch and saved with `safetensors.torch.save_file(model.state_dict())`
//! (tools/golden/gen_cli.py) imports into qstack's LeNet5 graph and gives PyTorch's logits;
//! `qstack import` accepts it and rejects state dicts that do not fit.

#[allow(dead_code)]
#[path = "../../qtensor/tests/golden_support/format.rs"]
mod format;

use std::path::Path;
use std::process::Command;

use qnn::qtensor::Tensor;
use qstack_cli::model::{FloatModel, Model, load_weights};
use qstack_cli::zoo::Arch;

const TORCH_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lenet5_torch.safetensors"
);

#[test]
fn torch_lenet5_imports_and_matches_pytorch_logits() {
    let g = format::parse(include_str!("data/lenet5_import.golden")).unwrap();
    let case = &g.cases[0];
    let module = load_weights(Arch::Lenet5, Path::new(TORCH_FILE)).unwrap();
    let mut model = FloatModel::fp32(module, Arch::Lenet5);
    let x = Tensor::new(&case.shape("shape"), case.f32s("x").to_vec()).unwrap();
    let y = model.predict(&x).unwrap();
    assert_eq!(y.shape(), case.shape("y_shape").as_slice());
    for (i, (a, b)) in y.data().iter().zip(case.f32s("y")).enumerate() {
        assert!(
            (a - b).abs() <= 1e-4 + 1e-4 * b.abs(),
            "y[{i}] = {a}, torch {b}"
        );
    }
    // fp16 weights stay close to PyTorch's fp32 logits.
    let mut half = FloatModel::fp32(
        load_weights(Arch::Lenet5, Path::new(TORCH_FILE)).unwrap(),
        Arch::Lenet5,
    )
    .into_fp16()
    .unwrap();
    let yh = half.predict(&x).unwrap();
    for (a, b) in yh.data().iter().zip(case.f32s("y")) {
        assert!(
            (a - b).abs() <= 2e-2 + 1e-2 * b.abs(),
            "fp16 {a}, torch {b}"
        );
    }
}

#[test]
fn import_command_accepts_the_torch_file_and_rejects_other_architectures() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qstack"))
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["import", "--input", TORCH_FILE]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("a valid lenet5 state dict (61706 parameters)")
    );
    for arch in ["lstm", "transformer"] {
        let o = run(&["import", "--model", arch, "--input", TORCH_FILE]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("does not fit the {arch} architecture")),
            "{err}"
        );
        assert!(
            err.contains("missing") || err.contains("Missing") || err.contains("key"),
            "{err}"
        );
    }
}
