import RNNDistCLI

KernelChoice.reexecWithAVX2KernelsIfNeeded()
RNNDist.runMain()
