// Training module: placeholder until its issue lands.
