"""SAML issuing with a KMS-held key: certificate, hardened XML input, AWS assertions, metadata."""
