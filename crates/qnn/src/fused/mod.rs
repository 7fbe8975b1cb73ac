//! Fused float modules (PyTorch `torch.ao.nn.intrinsic`): Conv+ReLU, Conv+BN(+ReLU),
//! Linear+ReLU, Linear+BN, BN+ReLU, as qflow's fuse pass builds them. (Being filled in.)
