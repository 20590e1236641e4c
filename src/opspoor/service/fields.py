"""Text fields of requests: the model's text rule (no NUL, see ``hashsets.model.check_text``)
applied where a request is validated, so a bad value is a 422 naming its field on both stores,
never a store error."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from opspoor.hashsets.model import RecordError, check_text


def _no_nul(value: str) -> str:
    try:
        return check_text(value, "value")
    except RecordError:
        raise ValueError("contains a NUL character (\\x00)") from None


#: request text: any characters but NUL
Text = Annotated[str, AfterValidator(_no_nul)]
#: a hash-set name, in a body or a path
Name = Annotated[Text, Field(min_length=1, max_length=255)]
