// HDF5 module: placeholder until its issue lands.
