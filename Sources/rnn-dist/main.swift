import RNNDistCLI

RNNDist.runMain()
