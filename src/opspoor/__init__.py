"""opspoor: recognise known material, bring forward the new.

The package layout follows the boxes of ``DESIGN.md``; imports flow one way::

    sources -> media -> signals -> index <- hashsets
                                     |
                                  triage -> store -> report / service / cli
"""

__version__ = "0.1.0"
