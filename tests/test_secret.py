"""The installation's secret: from the environment, else a 0600 key file made once in the user's data folder."""
import stat
import threading

import pytest

from pipeline import secret
from pipeline.secret import SecretError, derived_key, secret_key


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    """An empty user data folder and no TOUSU_SECRET."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("TOUSU_SECRET", raising=False)
    return tmp_path / "data" / "tousu"


def test_the_key_file_is_created_once_with_mode_0600(data_home):
    first = secret_key()
    path = data_home / "secret.key"
    assert secret.key_file() == path and path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 32 and secret_key() == first  # the same key on every later call


def test_processes_starting_together_agree_on_one_key(data_home):
    keys, errors = [], []

    def get():
        try:
            keys.append(secret_key())
        except Exception as exc:  # noqa: BLE001 - any failure fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=get) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(keys)) == 1
    assert [p.name for p in data_home.iterdir()] == ["secret.key"]  # no temporary file left behind


def test_tousu_secret_wins_over_the_key_file_and_no_file_is_made(data_home, monkeypatch):
    monkeypatch.setenv("TOUSU_SECRET", "a-long-enough-secret-from-the-vault")
    assert secret_key() == b"a-long-enough-secret-from-the-vault"
    assert not (data_home / "secret.key").exists()


def test_a_short_secret_is_refused(data_home, monkeypatch):
    monkeypatch.setenv("TOUSU_SECRET", "short")
    with pytest.raises(SecretError, match="shorter than 16"):
        secret_key()


def test_a_key_file_others_can_read_is_refused(data_home):
    secret_key()
    path = data_home / "secret.key"
    path.chmod(0o644)
    with pytest.raises(SecretError, match=r"may be read by other users \(mode 0644\).*chmod 600"):
        secret_key()


def test_a_key_file_that_is_a_link_is_refused(data_home, tmp_path):
    planted = tmp_path / "planted.key"
    planted.write_text("an-attacker-chosen-key-0123456789")
    planted.chmod(0o600)
    data_home.mkdir(parents=True)
    (data_home / "secret.key").symlink_to(planted)
    with pytest.raises(SecretError, match="cannot read the secret key"):
        secret_key()


def test_each_purpose_gets_its_own_key(data_home, monkeypatch):
    monkeypatch.setenv("TOUSU_SECRET", "a-long-enough-secret-from-the-vault")
    a, b = derived_key("model-manifest-v1"), derived_key("note-hash")
    assert a != b and len(a) == 32 and secret_key() not in (a, b)
    monkeypatch.setenv("TOUSU_SECRET", "another-long-enough-secret-value")
    assert derived_key("model-manifest-v1") != a
