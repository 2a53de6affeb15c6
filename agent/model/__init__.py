"""Typed resources: data only, no behaviour. API, CLI and tests import them freely."""
