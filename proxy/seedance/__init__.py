"""The upstream's API as the edge knows it: the routes it forwards, the create body's shape,
and the model catalog (families, pixel sizes, prices) that validates and prices a create."""
