"""edge-registrar: the fleet CA, EST enrollment, membership and cluster assignment, the fleet poller.

Certificates the registrar issues carry the holder's role in the subject's
organizationalUnitName (``OU=fleet:node``, ``OU=fleet:reader``,
``OU=fleet:operator``, ``OU=fleet:admin``); the common name is the node id or
the operator's name. Node certificates also carry ``DNS:<node-id>`` and
``URI:urn:edge-agent:node:<node-id>``. Whatever a CSR asks for is ignored.
"""
