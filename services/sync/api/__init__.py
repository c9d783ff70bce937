"""The gRPC edge: server, servicers by area, proto conversion, resource names and access checks."""
