"""Helpers shared by the test modules (tests/conftest.py puts tests/ on sys.path).

No test module imports another test module (tests/unit/test_architecture.py checks it):
what two modules share lives here, or as a fixture in a conftest.py.

- ``facts``: hand-made cluster facts (no cloud)
- ``hadoop``: the sandbox mirror's Hadoop tarball run on loopback
- ``yarn``: a runner driving real YARN daemons per simulated node
- ``sshd``: a real sshd on 127.0.0.1 (root only); ``keys``: SSH key pairs on disk
- ``cloud``: the one fake cloud behind the provider's verbs (``FakeCloud``)
- ``cli``: the one CLI runner of the unit tests
- ``parse``: reading rendered Hadoop/Spark configuration files
- ``sandbox_cloud``: booting servers and SSH on the sandbox cloud
- ``e2e``: the CLI as a user runs it, keypairs, leftovers (integration tests)
"""
