"""The gRPC try-on service: thin glue between `tryon.v1` proto messages and `TryOnPipeline`.

Modules, one job each: `settings` (configuration), `errors` (domain errors -> gRPC status,
the one place), `batching` (the bounded dynamic-batching queue), `caches`, `garments`
(catalog access), `engine` (the inference layer: caches, batching, the model thread),
`servicer` (proto <-> domain), `interceptor` (status codes, metrics and logs per call),
`metrics`, `logs`, `output` (encoding results), `app` (the server object: start, drain,
stop) and `gen_stubs` (regenerates `gen/` from proto/).
"""
