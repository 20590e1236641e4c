"""NCMEC hash-sharing XML (the ``queryResult`` of ``GET /v2/entries``).

The sample follows the element names of NCMEC's v2 API as python-threatexchange's NCMEC client
reads them; that client parses the same sample here, so the sample's shape is checked against
it. Every value is synthetic.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from threatexchange.exchanges.clients.ncmec.hash_api import GetEntriesResponse, _XMLWrapper

from opspoor.errors import FormatError
from opspoor.hashsets.formats import detect_format, read_entries
from opspoor.hashsets.model import Category
from opspoor.signals import get_signal

SAMPLE = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
  <images count="3" maxTimestamp="2024-05-02T10:00:00Z">
    <image>
      <member id="42">Example Platform</member>
      <timestamp>2024-05-01T09:00:00Z</timestamp>
      <id>image-1</id>
      <classification>A1</classification>
      <fingerprints>
        <md5>{"A" * 32}</md5>
        <sha1>{"b" * 40}</sha1>
        <pdna>{"1," * 143}1</pdna>
        <pdq>{"c" * 64}</pdq>
        <netclean>{"d" * 40}</netclean>
      </fingerprints>
      <feedback lastUpdateTimestamp="2024-05-01T12:00:00Z">
        <affirmativeFeedback type="Md5" lastUpdateTimestamp="2024-05-01T12:00:00Z">
          <members timestamp="2024-05-01T12:00:00Z"><member id="43">Other Platform</member></members>
        </affirmativeFeedback>
      </feedback>
    </image>
    <deletedImage>
      <member id="42">Example Platform</member>
      <id>image-2</id>
      <timestamp>2024-05-02T10:00:00Z</timestamp>
    </deletedImage>
    <image>
      <member id="44">Third Platform</member>
      <timestamp>2024-05-02T09:00:00Z</timestamp>
      <id>image-3</id>
      <fingerprints><md5>{"e" * 32}</md5></fingerprints>
    </image>
  </images>
  <videos count="1" maxTimestamp="2024-05-02T11:00:00Z">
    <video>
      <member id="42">Example Platform</member>
      <timestamp>2024-05-02T11:00:00Z</timestamp>
      <id>video-1</id>
      <classification>B2</classification>
      <fingerprints>
        <md5>{"f" * 32}</md5>
        <tmk-pdqf rel="self" href="/v2/entries/video-1/fingerprints/TMK_PDQF"/>
      </fingerprints>
    </video>
  </videos>
  <paging><next>/v2/entries?from=2024-05-01T00%3A00%3A00.000Z&amp;start=1001&amp;size=1000&amp;max=2000</next></paging>
</queryResult>
""".encode()


def test_ncmec_entries() -> None:
    assert detect_format(SAMPLE) == "ncmec"
    a, b, v = read_entries(io.BytesIO(SAMPLE))
    assert a.signals == {"md5": "a" * 32, "sha1": "b" * 40, "photodna": "01" * 144, "pdq": "c" * 64}
    assert a.category == Category("ncmec", "A1") and a.external_id == "image-1"
    assert a.source == "Example Platform" and a.date_updated == "2024-05-01T09:00:00Z"
    assert a.extra == {"ncmec": {"type": "image", "member_id": "42", "fingerprints": {"netclean": "d" * 40}}}
    # the tombstone of image-2 is left out; an entry without classification has no category
    assert (b.external_id, b.category, b.signals) == ("image-3", None, {"md5": "e" * 32})
    assert v.category == Category("ncmec", "B2") and v.extra["ncmec"]["type"] == "video"
    assert v.extra["ncmec"]["fingerprints"] == {"tmk-pdqf": "/v2/entries/video-1/fingerprints/TMK_PDQF"}


def test_python_threatexchange_reads_the_same_sample() -> None:
    """python-threatexchange's NCMEC client, given the sample as its API client would get it,
    finds the same entries, classifications and fingerprints."""
    it = ET.iterparse(io.BytesIO(SAMPLE))
    for _, el in it:
        el.tag = el.tag.partition("}")[2] or el.tag  # as its client strips the namespace
    theirs = GetEntriesResponse.from_xml(_XMLWrapper(it.root), 0)  # type: ignore[attr-defined]
    live = {u.id: u for u in theirs.updates if not u.deleted}
    ours = {e.external_id: e for e in read_entries(io.BytesIO(SAMPLE))}
    assert set(live) == set(ours) and {u.id for u in theirs.updates if u.deleted} == {"image-2"}
    for entry_id, u in live.items():
        e = ours[entry_id]
        assert (str(e.category) if e.category else None) == (
            f"ncmec:{u.classification}" if u.classification else None
        )
        names = {"md5": "md5", "sha1": "sha1", "pdna": "photodna", "pdq": "pdq"}
        # (each value in its canonical form: a PhotoDNA's decimal bytes as their hex)
        assert {
            names[k]: get_signal(names[k]).validate(v) for k, v in u.fingerprints.items() if k in names
        } == {k: v.lower() for k, v in e.signals.items()}


def test_ncmec_bad_entry_is_named_and_skipped() -> None:
    data = SAMPLE.replace(b"<md5>" + b"f" * 32, b"<md5>" + b"g" * 32)
    errs: list[FormatError] = []
    got = list(read_entries(io.BytesIO(data), on_error=errs.append))
    assert [e.external_id for e in got] == ["image-1", "image-3"]
    assert errs[0].record == 4 and "md5" in errs[0].detail
    empty = SAMPLE.replace(b"<md5>" + b"e" * 32 + b"</md5>", b"")
    got = list(read_entries(io.BytesIO(empty), on_error=errs.append))
    assert [e.external_id for e in got] == ["image-1", "video-1"] and "no hash" in errs[1].detail


@pytest.mark.parametrize(
    "doc",
    [
        # an entity bomb, and an external entity that would read a local file
        b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
        b'<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images><image><id>&b;</id>'
        b"</image></images></queryResult>",
        b'<?xml version="1.0"?><!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images><image><id>&x;</id>'
        b"</image></images></queryResult>",
    ],
)
def test_ncmec_refuses_entities(doc: bytes) -> None:
    assert detect_format(doc) == "ncmec"
    with pytest.raises(FormatError, match="refused"):
        list(read_entries(io.BytesIO(doc)))


def test_ncmec_syntax_error_names_the_line() -> None:
    cut = SAMPLE[: SAMPLE.index(b"</images>")] + b"</videos>"
    with pytest.raises(FormatError) as info:
        list(read_entries(io.BytesIO(cut), "ncmec"))
    assert "XML syntax error" in info.value.detail and info.value.line is not None
