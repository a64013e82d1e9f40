from cipulse.redact import redact_url, split_credentials


def test_credentials_are_removed_and_the_rest_kept() -> None:
    redacted = redact_url("https://elastic:S3CRET@search.example:9200/prefix?x=1")
    assert "S3CRET" not in redacted
    assert "elastic" not in redacted
    assert redacted == "https://***@search.example:9200/prefix?x=1"


def test_urls_without_credentials_are_unchanged() -> None:
    for url in ("sqlite:///tmp/cipulse.db", "http://127.0.0.1:9200", "https://api.github.com"):
        assert redact_url(url) == url


def test_a_token_only_userinfo_is_removed() -> None:
    assert redact_url("https://ghp_abc123@ghe.example/api/v3") == "https://***@ghe.example/api/v3"


def test_a_non_numeric_port_does_not_break_redaction() -> None:
    redacted = redact_url("https://user:secret@search.example:notaport/x")
    assert "secret" not in redacted and "user" not in redacted
    assert redacted == "https://***@search.example:notaport/x"


def test_a_password_containing_at_signs_is_removed_whole() -> None:
    redacted = redact_url("https://user:p@ss@search.example:9200")
    assert redacted == "https://***@search.example:9200"


def test_credentials_are_split_off_percent_decoded() -> None:
    assert split_credentials("https://us%40er:p%3Aw@search.example:9200/x?q=1") == (
        "https://search.example:9200/x?q=1",
        "us@er",
        "p:w",
    )
    assert split_credentials("https://user@h/x") == ("https://h/x", "user", None)
    assert split_credentials("https://h:9200") == ("https://h:9200", None, None)
