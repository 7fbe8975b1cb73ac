//! Static quantized modules: int8 in, int8 out, on [`qkernels`], built with `from_float` as
//! PyTorch builds `torch.ao.nn.quantized` modules. (Being filled in.)
