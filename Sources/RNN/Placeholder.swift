// RNN module: placeholder until its issue lands.
