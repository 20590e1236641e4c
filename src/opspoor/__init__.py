"""opspoor: recognise known material, bring forward the new.

The package layout follows the boxes of ``DESIGN.md``; imports flow one way, from the faces
(cli, service, report) down to media (docs/architecture.md; ``tests/test_architecture.py`` holds
the table of what each package may import).
"""

__version__ = "0.1.0"
