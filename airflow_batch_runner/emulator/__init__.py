"""A local AWS endpoint for development and tests: moto for most services, our own AWS Batch."""
