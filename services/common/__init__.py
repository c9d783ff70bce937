"""What both services share: authentication, authorisation, database setup, secrets and gRPC errors."""
