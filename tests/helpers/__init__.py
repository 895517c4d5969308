"""Steps a test takes with the product, shared by several modules: run the functions behind
the local gateway and sign in, enrol and prove a second factor, store a directory, run an
`idp` command, read a page. They use the parts in tests.support. See tests/README.md for
what goes where."""
