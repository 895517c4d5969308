"""The real parts the tests start and stop, and stand-ins loaded where a real module would be:
an embedded AWS (a moto server on a free port), an OpenLDAP slapd with a database of its own,
threads released at one moment for races, and handler modules for the worker pools' tests.
Nothing here knows the product's pages or rules; the product's steps are in tests.helpers.
See tests/README.md for what goes where."""
