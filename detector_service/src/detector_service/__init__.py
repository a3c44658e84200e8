"""A gRPC object-detection service and the client that talks to it."""
