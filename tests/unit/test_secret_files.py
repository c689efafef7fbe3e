"""Every secret setting can come from a file named by `<VARIABLE>_FILE` (Docker and
Kubernetes secrets), with clear errors that never show a secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from couples_nudge.common.secret_files import SecretFileError, SecretFileSource, secret_variables
from couples_nudge.common.settings import CommonSettings
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings
from tests.support.cli import cli_env, nudge

SECRET_TEXT = "s3cr3t-value-never-shown"
UNSUBSCRIBE_KEY = "k1:" + "u" * 40
# The secrets the services have today; new ones are found by type (test below).
KNOWN = {
    "REDIS_URL",
    "smtp_password",
    "unsubscribe_secrets",
    "vapid_private_key",
    "webhook_secret",
    "operator_token",
}


@pytest.fixture(autouse=True)
def _no_ambient_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets a developer (or CI: REDIS_URL) exported must not leak into these tests."""
    for model in (SchedulerSettings, NotifierSettings):
        for _, names in secret_variables(model):
            for name in names:
                monkeypatch.delenv(name, raising=False)
                monkeypatch.delenv(f"{name}_FILE", raising=False)


def _file(tmp_path: Path, text: str, name: str = "secret") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


class TestSecretFields:
    @pytest.mark.parametrize("model", [SchedulerSettings, NotifierSettings])
    def test_secret_fields_are_found_by_their_type(self, model: type[BaseSettings]) -> None:
        """Every SecretStr field, optional or listed, is a secret; no other field is."""
        keys = {key for key, _ in secret_variables(model)}
        expected = {
            ("REDIS_URL" if name == "redis_url" else name)
            for name, field in model.model_fields.items()
            if "SecretStr" in str(field.annotation)
        }
        assert keys == expected
        assert keys >= (KNOWN if model is NotifierSettings else {"REDIS_URL"})

    @pytest.mark.parametrize("model", [SchedulerSettings, NotifierSettings])
    def test_every_secret_variable_has_a_file_form(
        self, model: type[BaseSettings], tmp_path: Path
    ) -> None:
        """For each variable of each secret field, `<VARIABLE>_FILE` supplies its value."""
        path = _file(tmp_path, SECRET_TEXT + "\n")
        for key, names in secret_variables(model):
            for name in names:
                values = SecretFileSource(model, environ={f"{name}_FILE": str(path)})()
                assert values == {key: SECRET_TEXT}, name

    def test_a_new_secret_field_gets_a_file_form_for_free(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A SecretStr field added to a settings class is read from its _FILE variable."""

        class Extended(NotifierSettings):
            fcm_service_account: SecretStr | None = None

        path = _file(tmp_path, '{"type": "service_account"}\n')
        monkeypatch.setenv("NUDGE_FCM_SERVICE_ACCOUNT_FILE", str(path))
        settings = Extended()
        assert settings.fcm_service_account is not None
        assert settings.fcm_service_account.get_secret_value() == '{"type": "service_account"}'


class TestReadingFiles:
    def test_redis_url_from_a_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """REDIS_URL_FILE gives the URL; the file's one trailing newline is not part of it."""
        monkeypatch.setenv("REDIS_URL_FILE", str(_file(tmp_path, "redis://:pw@db:6380/2\n")))
        assert CommonSettings().redis_url.get_secret_value() == "redis://:pw@db:6380/2"

    def test_the_nudge_prefixed_alias_has_a_file_form_too(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NUDGE_REDIS_URL_FILE works like NUDGE_REDIS_URL."""
        monkeypatch.setenv("NUDGE_REDIS_URL_FILE", str(_file(tmp_path, "redis://db:1/0")))
        assert SchedulerSettings().redis_url.get_secret_value() == "redis://db:1/0"

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("pw", "pw"),
            ("pw\n", "pw"),
            ("pw\r\n", "pw"),
            ("pw\n\n", "pw\n"),  # only one newline is the file's ending
            (" pw \n", " pw "),  # spaces are part of a password
        ],
    )
    def test_only_one_trailing_newline_is_stripped(
        self, text: str, value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The file holds the value as written, less the newline an editor adds."""
        monkeypatch.setenv("NUDGE_SMTP_PASSWORD_FILE", str(_file(tmp_path, text)))
        password = NotifierSettings().smtp_password
        assert password is not None
        assert password.get_secret_value() == value

    def test_notifier_secrets_from_files_pass_the_same_validation(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Comma-separated unsubscribe keys and the webhook secret read from files validate
        exactly as the plain variables do."""
        other = "k0:" + "o" * 40
        keys = _file(tmp_path, f"{UNSUBSCRIBE_KEY},{other}\n", "keys")
        monkeypatch.setenv("NUDGE_UNSUBSCRIBE_SECRETS_FILE", str(keys))
        monkeypatch.setenv("NUDGE_PUBLIC_URL", "https://nudges.example.org")
        monkeypatch.setenv("NUDGE_WEBHOOK_SECRET_FILE", str(_file(tmp_path, "hook\n", "hook")))
        monkeypatch.setenv("NUDGE_WEBHOOK_URL", "https://app.example.org/push")
        settings = NotifierSettings()
        assert [s.get_secret_value() for s in settings.unsubscribe_secrets] == [
            UNSUBSCRIBE_KEY,
            other,
        ]
        assert settings.webhook_secret is not None
        assert settings.webhook_secret.get_secret_value() == "hook"

    def test_the_plain_variables_still_work(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without _FILE variables nothing changes."""
        monkeypatch.setenv("NUDGE_OPERATOR_TOKEN", SECRET_TEXT)
        token = NotifierSettings().operator_token
        assert token is not None
        assert token.get_secret_value() == SECRET_TEXT


class TestErrors:
    def test_setting_both_forms_is_an_error_naming_both(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """X and X_FILE together are refused: which one wins would be a guess."""
        monkeypatch.setenv("NUDGE_OPERATOR_TOKEN", SECRET_TEXT)
        monkeypatch.setenv("NUDGE_OPERATOR_TOKEN_FILE", str(_file(tmp_path, SECRET_TEXT)))
        with pytest.raises(SecretFileError) as caught:
            NotifierSettings()
        message = str(caught.value)
        assert "NUDGE_OPERATOR_TOKEN, NUDGE_OPERATOR_TOKEN_FILE" in message
        assert SECRET_TEXT not in message

    def test_an_alias_and_a_file_form_together_are_an_error(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """REDIS_URL with NUDGE_REDIS_URL_FILE is as ambiguous as with REDIS_URL_FILE."""
        monkeypatch.setenv("REDIS_URL", "redis://db:1/0")
        monkeypatch.setenv("NUDGE_REDIS_URL_FILE", str(_file(tmp_path, "redis://x:2/0")))
        with pytest.raises(SecretFileError, match="REDIS_URL, NUDGE_REDIS_URL_FILE"):
            CommonSettings()

    @pytest.mark.parametrize("problem", ["missing", "directory", "not_utf8"])
    def test_an_unreadable_file_names_the_variable_and_path(
        self, problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Missing, a directory, or not text: the message names variable and path only."""
        path = tmp_path / "webhook-secret"
        if problem == "directory":
            path.mkdir()
        elif problem == "not_utf8":
            path.write_bytes(b"\xff\xfe" + SECRET_TEXT.encode())
        monkeypatch.setenv("NUDGE_WEBHOOK_SECRET_FILE", str(path))
        with pytest.raises(SecretFileError) as caught:
            NotifierSettings()
        message = str(caught.value)
        assert message.startswith("NUDGE_WEBHOOK_SECRET_FILE names a file that")
        assert str(path) in message
        assert SECRET_TEXT not in message

    def test_a_hostile_path_is_not_echoed_unbounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A path from the environment is cut and its control characters escaped."""
        monkeypatch.setenv("NUDGE_SMTP_PASSWORD_FILE", "/nope/\x1b[2J" + "a" * 5000)
        with pytest.raises(SecretFileError) as caught:
            NotifierSettings()
        message = str(caught.value)
        assert len(message) < 400
        assert "\x1b" not in message

    def test_the_command_line_says_it_in_one_line(self, tmp_path: Path) -> None:
        """`nudge status` with an unreadable REDIS_URL_FILE: one line, exit 2, no traceback."""
        missing = tmp_path / "redis-url"
        ran = nudge("status", env=cli_env(REDIS_URL_FILE=str(missing)))
        assert ran.code == 2, ran.err
        assert ran.err_lines == [
            f"nudge: REDIS_URL_FILE names a file that cannot be read ({missing}: "
            "No such file or directory)"
        ]
