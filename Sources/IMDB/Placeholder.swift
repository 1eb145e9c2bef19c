// IMDB module: placeholder until its issue lands.
