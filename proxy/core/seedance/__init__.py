"""The upstream's API as every part knows it: the routes, and the model catalog (families, pixel
sizes, prices) that validates and prices a create."""
