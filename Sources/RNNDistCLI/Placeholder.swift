// RNNDistCLI module: placeholder until its issue lands.
