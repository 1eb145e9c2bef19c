print("rnn-dist: not built yet")
