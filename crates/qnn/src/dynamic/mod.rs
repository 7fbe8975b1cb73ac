//! Dynamic quantized modules: int8 or f16 weights, activations quantized on every call
//! (PyTorch `torch.ao.nn.quantized.dynamic`). (Being filled in.)
