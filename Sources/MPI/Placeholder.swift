// MPI module: placeholder until its issue lands.
