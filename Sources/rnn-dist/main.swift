import RNNDistCLI

RNNDist.catchStopSignalsOfTrain()
KernelChoice.reexecWithAVX2KernelsIfNeeded()
RNNDist.runMain()
