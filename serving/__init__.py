"""The BentoML service and what it needs at request time."""
