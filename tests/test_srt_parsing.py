"""Pure SRT parsing: the stream ids encoders send (the forms of Haivision's access control
guide, SRS, MediaMTX, Larix and Blackmagic) and the srt:// push URLs platforms hand out."""

from __future__ import annotations

import re

import pytest

from ingest.srt.streamid import AccessReject, PublishTarget, StreamIdError, parse_stream_id
from ingest.srt.target import SrtTarget, parse_srt_target

KEY = "lbk_Zx81mQpA7bC3dE5fG7hJ"


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        (KEY, PublishTarget(KEY)),
        (f"live/{KEY}", PublishTarget(KEY)),
        (f"/live/{KEY}", PublishTarget(KEY)),
        (f"publish/live/{KEY}", PublishTarget(KEY)),
        (f"#!::r=live/{KEY},m=publish", PublishTarget(KEY)),  # SRS and the ffmpeg docs
        (f"#!::r={KEY}", PublishTarget(KEY)),  # no m: an ingest takes publishes
        (f"#!::m=publish,r=publish/live/{KEY}", PublishTarget(KEY)),
        (f"#!::u=studio-cam,r=live/{KEY},m=publish,t=stream,h=ingest.example", PublishTarget(KEY)),
        (f"#!::r=haifeng/studio-1,s={KEY},m=publish", PublishTarget(KEY, ("haifeng", "studio-1"))),
        (f"#!::s={KEY},u=host", PublishTarget(KEY)),
        (f"#!::r=live,s={KEY}", PublishTarget(KEY)),
        # Blackmagic encoders add their own keys (MediaMTX issue 3701).
        (
            f"#!::bmd_uuid=0e1df79f-77e6,bmd_name=rdt-wp-003,r=live/{KEY},m=publish",
            PublishTarget(KEY),
        ),
    ],
)
def test_stream_id_forms(raw: str, target: PublishTarget) -> None:
    assert parse_stream_id(raw) == target


@pytest.mark.parametrize(
    ("raw", "reject", "message"),
    [
        ("", AccessReject.BAD_REQUEST, "no stream id"),
        (f"#!::r=live/{KEY},m=request", AccessReject.BAD_MODE, "not m=request"),
        (f"#!::r=live/{KEY},m=bidirectional", AccessReject.BAD_MODE, "not m=bidirectional"),
        (f"#!::r=live/{KEY},m=push", AccessReject.BAD_MODE, "m must be publish"),
        (f"#!::r=live/{KEY},t=file", AccessReject.NOTSUP_MEDIA, "only t=stream"),
        ("#!::u=admin,m=publish", AccessReject.BAD_REQUEST, "r (the stream key) is missing"),
        (f"#!::r=live/{KEY},r=x", AccessReject.BAD_REQUEST, "a key is given twice"),
        (f"#!::r=live/{KEY},junk", AccessReject.BAD_REQUEST, "key=value pairs"),
        (f"#!:{{r=live/{KEY}}}", AccessReject.BAD_REQUEST, "only the #!:: form"),
        (f"app/other/{KEY}", AccessReject.BAD_REQUEST, "not 3 path segments"),
        (f"rtmp/{KEY}", AccessReject.BAD_REQUEST, "not 2 path segments"),
        (f"#!::r=a/b/c,s={KEY}", AccessReject.BAD_REQUEST, "r must be BASE/ROOM"),
        ("live/", AccessReject.BAD_REQUEST, "ends with / where the stream key belongs"),
        ("#!::r=live/", AccessReject.BAD_REQUEST, "ends with / where the stream key belongs"),
        ("#!::r=live,s=", AccessReject.BAD_REQUEST, "names no stream key"),
        (f"live/{KEY} ", AccessReject.BAD_REQUEST, "spaces or control characters"),
        (f"live/{KEY}\x00", AccessReject.BAD_REQUEST, "spaces or control characters"),
        ("k" * 257, AccessReject.BAD_REQUEST, "longer than 256"),
        ("#!::r=" + "k" * 510, AccessReject.BAD_REQUEST, "longer than 512"),
    ],
)
def test_stream_ids_refused_with_the_code_for_the_caller(
    raw: str, reject: AccessReject, message: str
) -> None:
    with pytest.raises(StreamIdError, match=re.escape(message)) as caught:
        parse_stream_id(raw)
    assert caught.value.reject == reject
    assert KEY not in str(caught.value), "a refusal never quotes the key"


def test_the_key_is_kept_out_of_repr() -> None:
    assert KEY not in repr(parse_stream_id(KEY))


# --- push URLs --------------------------------------------------------------------------------

SID = "#!::r=live/platform-key-0001,m=publish"


@pytest.mark.parametrize(
    ("url", "key", "target"),
    [
        ("srt://push.example.com:9000", "", SrtTarget("push.example.com", 9000)),
        ("SRT://10.0.0.1:9000/", "k-123", SrtTarget("10.0.0.1", 9000, "k-123")),
        (f"srt://[2001:db8::1]:9000?streamid={SID}", "", SrtTarget("2001:db8::1", 9000, SID)),
        # Percent-encoded, as a URL should be; the key field may repeat it.
        (
            "srt://h:1?streamid=%23!%3A%3Ar%3Dlive%2Fk%2Cm%3Dpublish",
            "",
            SrtTarget("h", 1, "#!::r=live/k,m=publish"),
        ),
        (f"srt://h:1?streamid={SID}", SID, SrtTarget("h", 1, SID)),
        (
            "srt://h:1?passphrase=correct%20horse&pbkeylen=32&latency=2000000&mode=caller",
            "",
            SrtTarget("h", 1, "", "correct horse", latency_ms=2000, pbkeylen=32),
        ),
        ("srt://h:1?latency=200&transtype=live", "", SrtTarget("h", 1, latency_ms=200)),
        ("srt://h:1?connect_timeout=3000&", "", SrtTarget("h", 1, connect_timeout_ms=3000)),
    ],
)
def test_push_urls(url: str, key: str, target: SrtTarget) -> None:
    assert parse_srt_target(url, key) == target


@pytest.mark.parametrize(
    ("url", "key", "message"),
    [
        ("rtmp://h:1", "", "must start with srt://"),
        ("srt://h", "", "needs a port"),
        ("srt://h:0", "", "needs a port"),
        ("srt://h:99999", "", "not a valid URL"),
        ("srt://:9000", "", "no host"),
        ("srt://user:secret-pass@h:1", "", "user name or password"),
        ("srt://h:1/live/secret-key-0001", "", "SRT URLs have no path"),
        ("srt://h:1?mode=listener", "", "mode must be caller"),
        ("srt://h:1?transtype=file", "", "transtype must be live"),
        ("srt://h:1?passphrase=short", "", "10 to 79 characters"),
        ("srt://h:1?pbkeylen=20", "", "16, 24 or 32"),
        ("srt://h:1?latency=soon", "", "latency must be a whole number"),
        ("srt://h:1?maxbw=100", "", "'maxbw' is not supported"),
        ("srt://h:1?Secret-Key-0001=1", "", "a parameter is not supported"),
        ("srt://h:1?secret-key-0001", "", "parameter without a value"),
        ("srt://h:1?streamid=a&streamid=b", "", "streamid twice"),
        ("srt://h:1?streamid=secret-one-0001", "secret-two-0002", "not both"),
        ("srt://h:1", "x" * 513, "longer than 512"),
        ("srt://h:1?streamid=a%0Ab", "", "control characters"),
    ],
)
def test_push_urls_refused_without_quoting_secrets(url: str, key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_srt_target(url, key)
    for secret in ("secret", "Secret"):
        assert secret not in str(caught.value)


def test_push_target_shows_and_scrubs_only_the_last_four_characters() -> None:
    target = parse_srt_target(f"srt://h:1?streamid={SID}&passphrase=correct-horse-battery")
    assert str(target) == "srt://h:1 (stream id …lish)"
    assert "correct" not in repr(target) and "platform-key" not in repr(target)
    scrubbed = target.scrub(f"failed: {SID} / correct-horse-battery")
    assert scrubbed == "failed: …lish / …"
