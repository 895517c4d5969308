"""The README's rendered diagrams: ``python -m docs.diagrams`` (``make diagrams``) writes docs/images."""
