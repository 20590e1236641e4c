"""Evidence sources: files from folders and archives (nested), each with a stable evidence path.

``iter_evidence`` is what the scan iterates; it never decodes media and never writes anywhere.
"""

from opspoor.sources.evidence import CONTAINER_SEP, EvidenceItem, open_readonly
from opspoor.sources.folder import count_evidence, iter_evidence, source_names
from opspoor.sources.limits import Limits

__all__ = [
    "CONTAINER_SEP",
    "EvidenceItem",
    "Limits",
    "count_evidence",
    "iter_evidence",
    "open_readonly",
    "source_names",
]
