"""The upstream's create body as the edge checks it: its shape, and the request against its model
family (the routes and the catalog are the shared core's: proxy/core/seedance/)."""
