"""Model implementations: our own PyTorch code around published weights, shared by the in-process
backend and (later) the Triton model repository."""
